"""AMI 3.x bootstrap actions of an EmrCluster, mapped to what they mean on EMR release 4.x and later.

Expected values come from AWS's documentation, by hand:
- Amazon EMR Release Guide, "Customizing cluster and application configuration with earlier AMI versions": configure-
  hadoop's key-value options and the classification each became (-c core-site, -s hdfs-site, -m mapred-site,
  -y yarn-site, -t httpfs-site, -z capacity-scheduler, -e emrfs-site, -l hadoop-log4j);
- Amazon EMR Management Guide, "Create bootstrap actions": configure-hadoop is not supported on release 4.x and later,
  and bootstrap actions run as the hadoop user (root through sudo);
- Hadoop's Fair Scheduler page: `yarn.resourcemanager.scheduler.class` =
  org.apache.hadoop.yarn.server.resourcemanager.scheduler.fair.FairScheduler, and the allocation file is
  `yarn.scheduler.fair.allocation.file`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from datapipe.importer import import_file
from datapipe.importer.bootstrap import ALLOCATION_FILE
from tests.timing import growth

from .conftest import CORPUS_DIR, import_with_values, samples_absent
from .test_resources import DEFAULT, ROLES, run

FAIR_SAMPLE = "hadoop-activity/hadoop-activity-world-count-fair.json"
FAIR_SCHEDULER = "org.apache.hadoop.yarn.server.resourcemanager.scheduler.fair.FairScheduler"
DATA_PIPELINE_CONFIGURE_HADOOP = ("s3://datapipeline-us-east-1/us-east-1/bootstrap-actions/latest/TaskRunner/"
                                  "configure-hadoop")


def cluster_with(*bootstrap: str, **fields: Any) -> list[dict[str, Any]]:
    cluster = {"id": "C", "type": "EmrCluster", **ROLES, "releaseLabel": "emr-7.5.0", **fields}
    if bootstrap:
        cluster["bootstrapAction"] = list(bootstrap)
    return [DEFAULT, cluster, {"id": "Use", "type": "EmrActivity", "runsOn": {"ref": "C"},
                               "step": "command-runner.jar,ls"}]


def errors_of(output: str) -> list[str]:
    return [line.strip().removeprefix("error: ") for line in output.splitlines() if "error:" in line]


def test_the_corpus_fair_scheduler_sample_copies_its_allocation_file_and_configures_yarn() -> None:
    path = CORPUS_DIR / FAIR_SAMPLE
    if not path.is_file():
        samples_absent()
    plan = import_with_values(path)  # tests/importer/corpus_values/hadoop-activity-world-count-fair.values.json
    assert plan.deployable, plan.errors
    [cluster] = plan.clusters
    # Data Pipeline's configure-hadoop is gone; a copy of the allocation file (as root) takes its place.
    assert cluster.bootstrap_actions == [("file:/usr/bin/sudo", [
        "/usr/bin/aws", "s3", "cp", "s3://example-pipeline-config/fair-scheduler.xml", ALLOCATION_FILE])]
    [yarn] = [c for c in cluster.configurations if c.classification == "yarn-site"]
    assert yarn.properties == {"yarn.resourcemanager.scheduler.class": FAIR_SCHEDULER,
                               "yarn.scheduler.fair.allocation.file": ALLOCATION_FILE}
    assert len(cluster.configurations) == 1  # one yarn-site, not one per source


def test_configure_hadoop_key_values_become_the_documented_classifications(
    write_definition: Callable[..., Path],
) -> None:
    # The reference's HadoopActivity example (capacity queues), the DynamoDB export samples' long options, and the
    # other shortcuts of the Release Guide's table.
    path = write_definition(cluster_with(
        "s3://us-east-1.elasticmapreduce/bootstrap-actions/configure-hadoop,-z,"
        "yarn.scheduler.capacity.root.queues=low\\,high\\,default,-z,yarn.scheduler.capacity.root.high.capacity=50",
        "s3://elasticmapreduce/bootstrap-actions/configure-hadoop, --yarn-key-value, "
        "yarn.nodemanager.resource.memory-mb=12800,--mapred-key-value,mapreduce.map.java.opts=-Xmx400M",
        f"{DATA_PIPELINE_CONFIGURE_HADOOP},-c,fs.trash.interval=60,-s,dfs.replication=2,-t,httpfs.x=1,"
        "-e,fs.s3.consistent=true,-l,log4j.rootLogger=WARN",
        "s3://my-bucket/my-own-action.sh,--fast",
    ))
    plan = import_file(path)
    assert plan.deployable, plan.errors
    [cluster] = plan.clusters
    assert {c.classification: c.properties for c in cluster.configurations} == {
        "capacity-scheduler": {"yarn.scheduler.capacity.root.queues": "low,high,default",
                               "yarn.scheduler.capacity.root.high.capacity": "50"},
        "yarn-site": {"yarn.nodemanager.resource.memory-mb": "12800"},
        "mapred-site": {"mapreduce.map.java.opts": "-Xmx400M"},
        "core-site": {"fs.trash.interval": "60"},
        "hdfs-site": {"dfs.replication": "2"},
        "httpfs-site": {"httpfs.x": "1"},
        "emrfs-site": {"fs.s3.consistent": "true"},
        "hadoop-log4j": {"log4j.rootLogger": "WARN"},
    }
    assert cluster.bootstrap_actions == [("s3://my-bucket/my-own-action.sh", ["--fast"])]  # the user's own: as is


def test_a_property_of_the_definitions_own_configuration_wins_over_a_mapped_one(
    write_definition: Callable[..., Path],
) -> None:
    objects = cluster_with(f"{DATA_PIPELINE_CONFIGURE_HADOOP},-y,yarn.a=from-bootstrap,-y,yarn.b=2",
                           configuration={"ref": "Yarn"}, hadoopSchedulerType="PARALLEL_FAIR_SCHEDULING")
    objects += [{"id": "Yarn", "type": "EmrConfiguration", "classification": "yarn-site", "property": {"ref": "A"}},
                {"id": "A", "type": "Property", "key": "yarn.a", "value": "from-configuration"}]
    [cluster] = import_file(write_definition(objects)).clusters
    [yarn] = cluster.configurations
    assert yarn.properties == {"yarn.a": "from-configuration", "yarn.b": "2",
                               "yarn.resourcemanager.scheduler.class": FAIR_SCHEDULER}


def test_what_cannot_be_expressed_is_one_line_naming_the_cluster_and_field_and_what_to_write(
    write_definition: Callable[..., Path],
) -> None:
    cases = {
        "s3://datapipeline-eu-west-1/eu-west-1/bootstrap-actions/latest/TaskRunner/install-something,x":
            "C.bootstrapAction: s3://datapipeline-eu-west-1/eu-west-1/bootstrap-actions/latest/TaskRunner/"
            "install-something is one of Data Pipeline's own bootstrap actions for AMI 3.x clusters",
        f"{DATA_PIPELINE_CONFIGURE_HADOOP},-Y,s3://b/yarn.xml":
            "C.bootstrapAction: configure-hadoop -Y merges an XML file into yarn-site, which the importer cannot read; "
            "write its properties as an EmrConfiguration with classification yarn-site",
        f"{DATA_PIPELINE_CONFIGURE_HADOOP},--capacity-config-file,s3://b/c.xml":
            "C.bootstrapAction: configure-hadoop --capacity-config-file merges an XML file into capacity-scheduler",
        f"{DATA_PIPELINE_CONFIGURE_HADOOP},--fair-config-copy-file,not-s3":
            "C.bootstrapAction: configure-hadoop --fair-config-copy-file needs the S3 object",
        f"{DATA_PIPELINE_CONFIGURE_HADOOP},-y,no-equals-sign":
            "C.bootstrapAction: configure-hadoop -y needs key=value after it; got 'no-equals-sign'",
        f"{DATA_PIPELINE_CONFIGURE_HADOOP},--daemon-opts,x":
            "C.bootstrapAction: configure-hadoop option '--daemon-opts' has no equivalent",
    }
    for action, expected in cases.items():
        code, output = run(write_definition(cluster_with(action)))
        assert code == 1, output
        errors = errors_of(output)
        assert any(line.startswith(expected) for line in errors), (action, errors)
        assert all(len(line) < 400 for line in output.splitlines())


def test_hostile_bootstrap_actions_are_refused_or_mapped_in_linear_time(write_definition: Callable[..., Path]) -> None:
    huge = "x" * 100_000
    code, output = run(write_definition(cluster_with(f"s3://datapipeline-us-east-1/{huge}")))
    assert code == 1 and all(len(line) < 400 for line in output.splitlines())
    code, output = run(write_definition(cluster_with(f"{DATA_PIPELINE_CONFIGURE_HADOOP},-y,\n\x00{huge}")))
    assert code == 1 and all(len(line) < 400 for line in output.splitlines())
    def mapped(count: int) -> None:
        options = ",".join(f"-y,yarn.k{i}=v" for i in range(count))
        path = write_definition(cluster_with(f"{DATA_PIPELINE_CONFIGURE_HADOOP},{options}"), name=f"many-{count}.json")
        [cluster] = import_file(path).clusters
        assert len(cluster.configurations[0].properties) == count

    assert growth(mapped, 2_000, 8_000) < 8  # four times the options: linear about 4x, quadratic 16x


def test_the_cluster_nodes_may_read_the_allocation_file_they_copy() -> None:
    from stacks.pipelines import emr_buckets

    path = CORPUS_DIR / FAIR_SAMPLE
    if not path.is_file():
        samples_absent()
    # The instance role reads and writes the buckets the EMR work names: the allocation file's bucket among them.
    assert "example-pipeline-config" in emr_buckets([import_with_values(path)])
