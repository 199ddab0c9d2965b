"""datapipe: a serverless successor to AWS Data Pipeline."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("datapipe")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+checkout"
