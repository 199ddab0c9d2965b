"""An EmrCluster's bootstrap actions on the releases the importer creates clusters with (4.x and later).

Data Pipeline's older clusters (AMI 2.x and 3.x) were configured by bootstrap actions that EMR release 4.x and later
no longer run: "configure-Hadoop and configure-daemons are not supported in Amazon EMR release 4.x" (Amazon EMR
Management Guide, "Create bootstrap actions"); their options became configuration classifications (Amazon EMR Release
Guide, "Customizing cluster and application configuration with earlier AMI versions"). So a bootstrap action that is
`configure-hadoop` (in EMR's bucket or in Data Pipeline's own `s3://datapipeline-<region>/...`) is mapped to what it
meant:

- a key-value option (`-y key=value` or `--yarn-key-value key=value`, ...) -> that property in the classification the
  Release Guide's table names for it (`-c` core-site, `-s` hdfs-site, `-m` mapred-site, `-y` yarn-site, `-t`
  httpfs-site, `-z` capacity-scheduler, `-e` emrfs-site, `-l` hadoop-log4j);
- Data Pipeline's `--fair-config-copy-file <s3 object>` (the fair scheduler's allocation file) -> a bootstrap action
  copying that object to ALLOCATION_FILE (with sudo: bootstrap actions run as the hadoop user) and yarn-site's
  `yarn.scheduler.fair.allocation.file` naming it; `hadoopSchedulerType: PARALLEL_FAIR_SCHEDULING` sets yarn-site's
  `yarn.resourcemanager.scheduler.class` to the FairScheduler (resources.py);
- an option that merges an XML file (`-Y file`, `--yarn-config-file file`, ...) cannot be read at import time: one
  line refuses it, saying to write its properties as an EmrConfiguration of that classification.

Any other bootstrap action in Data Pipeline's bucket is refused naming it: it belonged to Data Pipeline's AMI 3.x
clusters and does not exist for the release used. Other bootstrap actions (the user's own scripts) pass unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from datapipe.importer.laxjson import printable

if TYPE_CHECKING:
    from datapipe.importer.resources import Cluster

# Data Pipeline's own buckets, one per region (s3://datapipeline-us-east-1/...).
DATAPIPELINE_BUCKET = re.compile(r"^s3://datapipeline-[a-z0-9-]+/", re.IGNORECASE)
# EMR's AMI-era configure-hadoop, in EMR's bucket (global or regional) or in Data Pipeline's.
CONFIGURE_HADOOP = re.compile(r"^s3://[a-z0-9.-]+/.*/configure-hadoop$", re.IGNORECASE)
EMR_BUCKET = re.compile(r"^s3://([a-z0-9-]+\.)?elasticmapreduce/", re.IGNORECASE)
# Where the fair scheduler's allocation file is copied on each node, and how.
ALLOCATION_FILE = "/etc/hadoop-fair-scheduler/fair-scheduler.xml"
ALLOCATION_FILE_PROPERTY = "yarn.scheduler.fair.allocation.file"
COPY_COMMAND = "file:/usr/bin/sudo"
FAIR_CONFIG_OPTION = "--fair-config-copy-file"
S3_OBJECT = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+$")

# configure-hadoop's configuration files: keyword, key-value shortcut, the classification that replaced the file.
CLASSIFICATIONS = {
    "core": ("c", "core-site"),
    "hdfs": ("s", "hdfs-site"),
    "mapred": ("m", "mapred-site"),
    "yarn": ("y", "yarn-site"),
    "httpfs": ("t", "httpfs-site"),
    "capacity": ("z", "capacity-scheduler"),
    "emrfs": ("e", "emrfs-site"),
}
KEY_VALUE_OPTIONS = {
    **{f"-{short}": classification for short, classification in CLASSIFICATIONS.values()},
    **{f"--{keyword}-key-value": classification for keyword, (_, classification) in CLASSIFICATIONS.items()},
    "-l": "hadoop-log4j",
}
FILE_OPTIONS = {
    **{f"-{short.upper()}": classification for short, classification in CLASSIFICATIONS.values()},
    **{f"--{keyword}-config-file": classification for keyword, (_, classification) in CLASSIFICATIONS.items()},
}


class BootstrapRefused(Exception):
    """A bootstrap action that cannot be expressed on the release used; the message says what to write instead."""


@dataclass
class MappedBootstrap:
    """What a bootstrap action becomes: bootstrap actions still to run, and properties per classification."""

    actions: list[tuple[str, list[str]]] = field(default_factory=list)
    properties: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def is_data_pipeline_action(path: str) -> bool:
    return bool(DATAPIPELINE_BUCKET.match(path))


def map_bootstrap_action(path: str, args: list[str], into: MappedBootstrap) -> None:
    """Add what one bootstrap action means to `into`; raise BootstrapRefused when it cannot be expressed."""
    if CONFIGURE_HADOOP.match(path) and (is_data_pipeline_action(path) or EMR_BUCKET.match(path)):
        _configure_hadoop(path, args, into)
        return
    if is_data_pipeline_action(path):
        raise BootstrapRefused(
            f"{_short(path)} is one of Data Pipeline's own bootstrap actions for AMI 3.x clusters, which EMR release "
            "4.x and later do not run; write what it did as an EmrConfiguration, or as a bootstrap action of your own "
            "in S3")
    into.actions.append((path, args))


def _configure_hadoop(path: str, args: list[str], into: MappedBootstrap) -> None:
    index = 0
    while index < len(args):
        option = args[index]
        value = args[index + 1] if index + 1 < len(args) else None
        if option in KEY_VALUE_OPTIONS:
            key, equals, setting = (value or "").partition("=")
            if value is None or not equals or not key.strip():
                raise BootstrapRefused(f"configure-hadoop {option} needs key=value after it; got "
                                       f"{printable(value or '')!r}")
            into.properties.setdefault(KEY_VALUE_OPTIONS[option], {})[key.strip()] = setting.strip()
        elif option in FILE_OPTIONS:
            raise BootstrapRefused(
                f"configure-hadoop {option} merges an XML file into {FILE_OPTIONS[option]}, which the importer cannot "
                f"read; write its properties as an EmrConfiguration with classification {FILE_OPTIONS[option]}")
        elif option == FAIR_CONFIG_OPTION:
            if value is None or not S3_OBJECT.match(value):
                raise BootstrapRefused(f"configure-hadoop {FAIR_CONFIG_OPTION} needs the S3 object of the fair "
                                       f"scheduler's allocation file (s3://bucket/key); got {printable(value or '')!r}")
            into.actions.append((COPY_COMMAND, ["/usr/bin/aws", "s3", "cp", value, ALLOCATION_FILE]))
            into.properties.setdefault("yarn-site", {})[ALLOCATION_FILE_PROPERTY] = ALLOCATION_FILE
        else:
            raise BootstrapRefused(
                f"configure-hadoop option {printable(option)!r} has no equivalent the importer knows for EMR release "
                "4.x and later; write it as an EmrConfiguration (Amazon EMR Release Guide, configuration "
                "classifications)")
        index += 2
    into.notes.append(f"{_short(path)} (AMI 3.x) is not run on EMR release 4.x and later: its options became "
                      "configuration classifications")


def _short(path: str) -> str:
    return printable(path, limit=120)


def apply_to_cluster(mapped: MappedBootstrap, cluster: Cluster) -> None:
    """The mapped bootstrap actions and properties on the cluster: each classification's properties go into the
    cluster's top-level configuration of that classification (one per classification), where a property the
    definition's own EmrConfiguration sets wins."""
    from datapipe.importer.resources import EmrConfiguration  # resources imports this module: import when used

    cluster.bootstrap_actions.extend(mapped.actions)
    for classification, properties in mapped.properties.items():
        existing = next((c for c in cluster.configurations if c.classification == classification), None)
        if existing is None:
            cluster.configurations.append(EmrConfiguration(classification, dict(properties)))
        else:
            existing.properties = {**properties, **existing.properties}
