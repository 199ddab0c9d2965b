"""Data bundles and containerised transforms (the Disdat `run` model).

A bundle is a named, immutable, versioned set of files plus a manifest. Bundles live in a local context and are
pushed to and pulled from the context's S3 remote. A transform (a `Transform` subclass named `module.Class`) reads
one input bundle and writes a new version of an output bundle, locally in a fresh process or on AWS Batch.
"""
