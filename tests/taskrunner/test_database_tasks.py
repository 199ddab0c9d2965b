"""SqlActivity, CopyActivity and ShellCommandPrecondition tasks run by a real `datapipe taskrunner` process against the
emulator and a real PostgreSQL server, every AWS call of the runner through a proxy this test starts; and
`datapipe taskrunner exec-task`, the command of a Batch job.

The producer here is a one-state state machine whose activity task gets the execution's input: each test sends a
task as the importer's state machine would. Expected rows and CSV text are worked by hand from the CSV rules of
docs/databases.md (PostgreSQL's COPY ... CSV: unquoted empty field = NULL, "" = empty string, quotes doubled).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from datapipe.local.extensions import EmulatorOptions
from datapipe.local.server import CLEARED_VARIABLES, Emulator
from datapipe.naming import Naming
from tests.database_servers import PASSWORD, USER, Server

REGION = "eu-west-1"
WORKER_GROUP = "wg-sql"
LOG_BUCKET = "runner-logs"
DATA_BUCKET = "runner-data"
SECRET = "rds/sales"
PROXY_USER = "runner"
PROXY_PASSWORD = "p@ss:w/rd %41"  # every character that must be percent-encoded in a proxy URL
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer", "upgrade"}


# ---------------------------------------------------------------------------------------------------------------------
# A forwarding proxy with basic authentication, counting what it forwards


@dataclass
class ProxyLog:
    forwarded: list[str] = field(default_factory=list)  # "<service> <operation or path>" of each forwarded request
    access_keys: list[str] = field(default_factory=list)  # the access key id that signed each of them
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def start_proxy(log: ProxyLog) -> ThreadingHTTPServer:
    expected = "Basic " + base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()

    class Forwarder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _forward(self) -> None:
            body = self._body()
            if self.headers.get("Proxy-Authorization") != expected:
                with log.lock:
                    log.refused += 1
                self.send_response(407)
                self.send_header("Proxy-Authenticate", 'Basic realm="test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            target = urlsplit(self.path)  # a forwarding proxy gets the absolute URL
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if "chunked" in headers.get("Transfer-Encoding", "").lower():
                del headers["Transfer-Encoding"]
                headers["Content-Length"] = str(len(body))
            operation = self.headers.get("X-Amz-Target") or f"{self.command} {target.path}"
            # SigV4: "AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/<service>/aws4_request, ..."
            scope = self.headers.get("Authorization", "").partition("Credential=")[2].split(",")[0].split("/")
            with log.lock:
                log.forwarded.append(f"{scope[3] if len(scope) > 3 else '?'} {operation}")
                log.access_keys.append(scope[0])
            upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=120)
            try:
                upstream.request(
                    self.command, target.path + (f"?{target.query}" if target.query else ""), body, headers
                )
                answer = upstream.getresponse()
                data = answer.read()
            finally:
                upstream.close()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP | {"transfer-encoding", "content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:  # a client hanging up is no news here
            pass

    server = Server(("127.0.0.1", 0), Forwarder)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="test-proxy", daemon=True).start()
    return server


# ---------------------------------------------------------------------------------------------------------------------
# The emulator (no app deployed: one activity, two buckets, a secret) and one runner process through the proxy


@dataclass
class Setup:
    emulator: Emulator
    postgres: Server
    proxy: ProxyLog
    state_machine_arn: str
    runner: subprocess.Popen[bytes]
    folder: Path
    env: dict[str, str]
    proxy_port: int

    def client(self, service: str) -> Any:
        return self.emulator.client(service)

    def run(self, task: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """Start an execution whose activity task is `task`; DescribeExecution once it ended."""
        sfn = self.client("stepfunctions")
        execution = sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=task["execution"], input=json.dumps(task)
        )["executionArn"]
        deadline = time.monotonic() + timeout
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            assert self.runner.poll() is None, (self.folder / "runner.stderr").read_text()
            assert time.monotonic() < deadline, f"{task['activityId']} did not end within {timeout} s"
            time.sleep(0.1)
        return dict(described)

    def log_text(self, uri: str) -> str:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return str(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode())


def sql(server: Server, statement: str, *values: object) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(host=server.host, port=server.port, user=USER, password=PASSWORD, dbname=server.dbname) as db:
        cursor = db.execute(statement, values or None)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def setup(postgres_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("database-tasks")
    saved = dict(os.environ)
    proxy_log = ProxyLog()
    proxy = start_proxy(proxy_log)
    try:
        with Emulator(region=REGION, options=EmulatorOptions(activity_poll_seconds=1), export_environment=False) as emu:
            sfn, s3 = emu.client("stepfunctions"), emu.client("s3")
            activity = sfn.create_activity(name=Naming().name(f"activity-{WORKER_GROUP}"))["activityArn"]
            # The producer: one activity state handed the execution's input, as the importer's states hand theirs.
            definition = {"StartAt": "Run", "States": {"Run": {"Type": "Task", "Resource": activity, "End": True}}}
            machine = sfn.create_state_machine(
                name="database-tasks",
                definition=json.dumps(definition),
                roleArn="arn:aws:iam::123456789012:role/test",
            )["stateMachineArn"]
            for bucket in (LOG_BUCKET, DATA_BUCKET):
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
            emu.client("secretsmanager").create_secret(Name=SECRET, SecretString=json.dumps(postgres_server.secret()))
            env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL" and k not in CLEARED_VARIABLES}
            env.update({k: v for k, v in emu.env().items() if k != "AWS_ENDPOINT_URL"})
            runner_env = {**env, "DATAPIPE_PROXY_PASSWORD": PROXY_PASSWORD}
            args = [
                sys.executable,
                "-m",
                "datapipe.cli",
                "taskrunner",
                f"--workerGroup={WORKER_GROUP}",
                f"--region={REGION}",
                f"--endpoint={emu.endpoint_url}",
                f"--logUri=s3://{LOG_BUCKET}/taskrunner/",
                f"--output={folder / 'output'}",
                "--taskrunnerId=sql-runner",
                "--proxyHost=127.0.0.1",
                f"--proxyPort={proxy.server_address[1]}",
                f"--proxyUsername={PROXY_USER}",
            ]
            with (folder / "runner.stderr").open("wb") as stderr:
                runner = subprocess.Popen(args, env=runner_env, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                yield Setup(emu, postgres_server, proxy_log, machine, runner, folder, env, proxy.server_address[1])
            finally:
                runner.send_signal(signal.SIGTERM)
                runner.wait(timeout=30)
    finally:
        proxy.shutdown()
        proxy.server_close()
        os.environ.clear()
        os.environ.update(saved)


def task(kind: str, activity_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "workflow": "datapipe-dev-sales",
        "execution": f"run-{uuid.uuid4().hex[:10]}",
        "activityId": activity_id,
        "attempt": 0,
        **fields,
    }


def jdbc_database(server: Server, secret: str = SECRET) -> dict[str, Any]:
    return {
        "id": "SalesDb",
        "type": "JdbcDatabase",
        "connectionString": f"jdbc:postgresql://{server.host}:{server.port}/{server.dbname}",
        "jdbcDriverClass": "org.postgresql.Driver",
        "secretId": secret,
    }


def rds_database() -> dict[str, Any]:
    """Host, port and database from the secret, as RDS writes its managed secrets."""
    return {"id": "SalesRds", "type": "RdsDatabase", "rdsInstanceId": "sales", "secretId": SECRET}


# ---------------------------------------------------------------------------------------------------------------------


def test_a_sql_activity_binds_its_arguments_and_reports_row_counts(setup: Setup) -> None:
    sql(setup.postgres, "DROP TABLE IF EXISTS ledger")
    hostile = "x'); DROP TABLE ledger; --"
    script = (
        "CREATE TABLE ledger (id integer PRIMARY KEY, label text);\n"
        "INSERT INTO ledger VALUES (?, ?), (?, ?);\n"
        "UPDATE ledger SET label = label || '!' WHERE id = ?;"
    )
    activity = {
        "id": "LoadLedger",
        "type": "SqlActivity",
        "script": script,
        "scriptArgument": ["1", hostile, "2", "b", "2"],
    }
    described = setup.run(task("SqlActivity", "LoadLedger", activity=activity, database=rds_database()))
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    # CREATE TABLE has no row count (-1, DB-API), the INSERT wrote 2 rows, the UPDATE changed 1.
    assert (output["statementsRun"], output["rowCounts"]) == (3, [-1, 2, 1])
    assert (output["workerGroup"], output["taskrunnerId"], output["attempt"]) == (WORKER_GROUP, "sql-runner", 1)
    assert sql(setup.postgres, "SELECT id, label FROM ledger ORDER BY id") == [(1, hostile), (2, "b!")]
    stdout = setup.log_text(output["stdout"])
    assert "UPDATE ledger SET label" in stdout and "row counts: [-1, 2, 1]" in stdout
    assert PASSWORD not in stdout


def test_a_failing_statement_is_sql_failed_naming_it_without_the_password(setup: Setup) -> None:
    sql(setup.postgres, "DROP TABLE IF EXISTS audit; CREATE TABLE audit (id integer)")
    script = "INSERT INTO audit VALUES (1);\nINSERT INTO no_such_table VALUES (2);"
    activity = {"id": "Audit", "type": "SqlActivity", "script": script}
    described = setup.run(task("SqlActivity", "Audit", activity=activity, database=jdbc_database(setup.postgres)))
    assert (described["status"], described["error"]) == ("FAILED", "TaskRunner.SqlFailed")
    cause = described["cause"]
    assert cause.startswith('Audit.script: statement 2 failed: relation "no_such_table" does not exist')
    assert PASSWORD not in cause
    assert sql(setup.postgres, "SELECT count(*) FROM audit") == [(0,)]  # statement 1 rolled back with it
    stderr_uri = cause.rsplit("(logs: ", 1)[1].rstrip(")")
    stderr = setup.log_text(stderr_uri)
    assert "statement 2 failed" in stderr and PASSWORD not in stderr


def test_an_unreadable_database_secret_is_secret_unavailable(setup: Setup) -> None:
    activity = {"id": "Nothing", "type": "SqlActivity", "script": "SELECT 1"}
    database = jdbc_database(setup.postgres, secret="rds/missing")
    described = setup.run(task("SqlActivity", "Nothing", activity=activity, database=database))
    assert (described["status"], described["error"]) == ("FAILED", "TaskRunner.SecretUnavailable")
    assert described["cause"].startswith("SalesDb: secret 'rds/missing' does not exist in Secrets Manager")


def test_copy_sql_to_s3_writes_csv_row_by_row(setup: Setup) -> None:
    sql(setup.postgres, "DROP TABLE IF EXISTS orders; CREATE TABLE orders (id integer, item text, note text)")
    sql(
        setup.postgres,
        "INSERT INTO orders VALUES (1, 'a,b', NULL), (2, 'say \"hi\"', ''), (3, E'two\\nlines', 'x'), (4, 'late', 'y')",
    )
    described = setup.run(
        task(
            "CopyActivity",
            "Export",
            activity={"id": "Export", "type": "CopyActivity"},
            input={
                "id": "Orders",
                "type": "SqlDataNode",
                "table": "orders",
                "selectQuery": "SELECT id, item, note FROM orders WHERE id < 4 ORDER BY id",
            },
            output={"id": "Out", "type": "S3DataNode", "directoryPath": f"s3://{DATA_BUCKET}/out/"},
            database=jdbc_database(setup.postgres),
        )
    )
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["rowsCopied"] == 3
    text = setup.log_text(f"s3://{DATA_BUCKET}/out/Export.csv")
    assert text.splitlines(keepends=True) == ['1,"a,b",\n', '2,"say ""hi""",""\n', '3,"two\n', 'lines",x\n']


def test_copy_s3_to_sql_loads_every_record(setup: Setup) -> None:
    sql(setup.postgres, "DROP TABLE IF EXISTS arrivals")
    csv = '1,"a,b",\n2,"say ""hi""",""\n3,"two\nlines",x\n'
    setup.client("s3").put_object(Bucket=DATA_BUCKET, Key="in/arrivals.csv", Body=csv.encode())
    described = setup.run(
        task(
            "CopyActivity",
            "Load",
            activity={"id": "Load", "type": "CopyActivity"},
            input={"id": "In", "type": "S3DataNode", "filePath": f"s3://{DATA_BUCKET}/in/arrivals.csv"},
            output={
                "id": "Arrivals",
                "type": "SqlDataNode",
                "table": "arrivals",
                "createTableSql": "CREATE TABLE arrivals (id integer PRIMARY KEY, item text, note text)",
                "insertQuery": "INSERT INTO arrivals (id, item, note) VALUES (?, ?, ?)",
            },
            database=rds_database(),
        )
    )
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["rowsCopied"] == 3
    rows = sql(setup.postgres, "SELECT id, item, note FROM arrivals ORDER BY id")
    assert rows == [(1, "a,b", None), (2, 'say "hi"', ""), (3, "two\nlines", "x")]


def test_a_precondition_that_does_not_hold_then_holds(setup: Setup) -> None:
    flag = setup.folder / "ready.flag"
    # The command also proves that the runner's proxy password (in its environment) never reaches a task.
    command = 'test -z "${DATAPIPE_PROXY_PASSWORD:-}" || exit 99; test -e "$1"'
    fields = {"command": command, "scriptArgument": [str(flag)]}
    first = setup.run(task("ShellCommandPrecondition", "InputReady", **fields))
    assert first["status"] == "SUCCEEDED", first
    answer = json.loads(first["output"])
    assert (answer["holds"], answer["exitCode"]) == (False, 1)
    flag.write_text("")
    second = setup.run(task("ShellCommandPrecondition", "InputReady", **fields))
    answer = json.loads(second["output"])
    assert (answer["holds"], answer["exitCode"]) == (True, 0)
    assert answer["stdout"].startswith(f"s3://{LOG_BUCKET}/taskrunner/")


def test_every_aws_call_of_the_runner_went_through_the_proxy_with_its_credentials(setup: Setup) -> None:
    activity = {"id": "Probe", "type": "SqlActivity", "script": "SELECT 1"}
    described = setup.run(task("SqlActivity", "Probe", activity=activity, database=jdbc_database(setup.postgres)))
    assert described["status"] == "SUCCEEDED", described
    with setup.proxy.lock:
        forwarded = list(setup.proxy.forwarded)
    services = {entry.split(" ", 1)[0] for entry in forwarded}
    assert {"sts", "states", "s3", "secretsmanager"} <= services, services
    assert any("GetActivityTask" in entry for entry in forwarded)
    assert any("SendTaskSuccess" in entry for entry in forwarded)
    assert setup.proxy.refused == 0
    log = (setup.folder / "runner.stderr").read_text()
    assert f"AWS calls through the proxy http://{PROXY_USER}@127.0.0.1:" in log
    assert PROXY_PASSWORD not in log and "p%40ss" not in log


# ---------------------------------------------------------------------------------------------------------------------
# exec-task: the command of a Batch job


def exec_task(setup: Setup, payload: dict[str, Any] | str, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "datapipe.cli",
            "taskrunner",
            "exec-task",
            f"--region={REGION}",
            f"--endpoint={setup.emulator.endpoint_url}",
            f"--output={setup.folder / 'exec'}",
            *extra,
        ],
        env={**setup.env, "DATAPIPE_TASK": text, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exec_task_prints_one_json_line_or_fails_in_one_line(setup: Setup) -> None:
    sql(setup.postgres, "DROP TABLE IF EXISTS batch_rows; CREATE TABLE batch_rows (id integer)")
    activity: dict[str, Any] = {
        "id": "BatchLoad",
        "type": "SqlActivity",
        "script": "INSERT INTO batch_rows SELECT generate_series(1, ?::integer)",
        "scriptArgument": ["5"],
    }
    done = exec_task(setup, task("SqlActivity", "BatchLoad", activity=activity, database=jdbc_database(setup.postgres)))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["rowCounts"] == [5]
    assert sql(setup.postgres, "SELECT count(*) FROM batch_rows") == [(5,)]

    activity = {"id": "BatchLoad", "type": "SqlActivity", "script": "INSERT INTO batch_rows VALUES ('not a number')"}
    failed = exec_task(
        setup, task("SqlActivity", "BatchLoad", activity=activity, database=jdbc_database(setup.postgres))
    )
    assert (failed.returncode, failed.stdout) == (1, "")
    assert failed.stderr.count("\n") == 1
    assert failed.stderr.startswith("Error: TaskRunner.SqlFailed: BatchLoad.script: statement 1 failed: invalid input")
    assert PASSWORD not in failed.stderr

    malformed = exec_task(setup, "[" * 100_000)
    assert (malformed.returncode, malformed.stderr) == (
        2,
        "Error: TaskRunner.InvalidTask: task input nests arrays or objects too deeply to be read\n",
    )


def test_exec_task_without_the_sql_drivers_says_which_extra_to_install(setup: Setup, tmp_path: Path) -> None:
    # A runner installed without the [sql] extra: psycopg cannot be imported.
    (tmp_path / "psycopg.py").write_text("raise ImportError('no psycopg here', name='psycopg')\n")
    activity = {"id": "NoDriver", "type": "SqlActivity", "script": "SELECT 1"}
    payload = task("SqlActivity", "NoDriver", activity=activity, database=jdbc_database(setup.postgres))
    result = exec_task(setup, payload, PYTHONPATH=str(tmp_path))
    assert (result.returncode, result.stderr.count("\n")) == (1, 1)
    assert result.stderr.startswith(
        "Error: TaskRunner.SqlFailed: SalesDb: the database drivers are not installed: "
        "pip install 'datapipe[sql]' (psycopg) (logs: "
    )


def test_a_wrong_proxy_password_stops_the_runner_in_one_line(setup: Setup, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from datapipe.cli import cli

    refused_before = setup.proxy.refused
    result = CliRunner().invoke(
        cli,
        [
            "taskrunner",
            f"--workerGroup={WORKER_GROUP}",
            f"--region={REGION}",
            f"--endpoint={setup.emulator.endpoint_url}",
            f"--output={tmp_path}",
            "--proxyHost=127.0.0.1",
            f"--proxyPort={setup.proxy_port}",
            f"--proxyUsername={PROXY_USER}",
        ],
        env={**setup.env, "DATAPIPE_PROXY_PASSWORD": "not-the-password"},
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: cannot reach {setup.emulator.endpoint_url}: the proxy refused the runner (407 Proxy Authentication "
        "Required): check --proxyUsername and the proxy password (--proxyPassword, the --config file's proxy-password "
        "or DATAPIPE_PROXY_PASSWORD)\n"
    )
    assert setup.proxy.refused > refused_before


def test_exec_task_reads_the_database_secret_with_the_task_role_through_the_proxy(setup: Setup) -> None:
    activity = {"id": "AsRole", "type": "SqlActivity", "script": "SELECT 1"}
    payload = task("SqlActivity", "AsRole", activity=activity, database=jdbc_database(setup.postgres))
    with setup.proxy.lock:
        seen_before = len(setup.proxy.forwarded)
    result = exec_task(
        setup,
        payload,
        "--taskRoleArn=arn:aws:iam::123456789012:role/etl-tasks",
        "--proxyHost=127.0.0.1",
        f"--proxyPort={setup.proxy_port}",
        f"--proxyUsername={PROXY_USER}",
        DATAPIPE_PROXY_PASSWORD=PROXY_PASSWORD,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statementsRun"] == 1
    with setup.proxy.lock:
        calls = setup.proxy.forwarded[seen_before:]
        keys = setup.proxy.access_keys[seen_before:]
    runner_key = setup.env["AWS_ACCESS_KEY_ID"]
    assert [(call, key) for call, key in zip(calls, keys, strict=True) if call.startswith("sts ")] == [
        ("sts POST /", runner_key)  # AssumeRole, signed with the runner's keys
    ]
    secret_reads = [key for call, key in zip(calls, keys, strict=True) if "GetSecretValue" in call]
    assert len(secret_reads) == 1 and secret_reads[0] != runner_key  # the role's short-lived key


def test_exec_task_stops_a_command_on_sigterm_and_reports_it_interrupted(setup: Setup) -> None:
    payload = task("ShellCommandPrecondition", "Slow", command="sleep 60")
    command = [sys.executable, "-m", "datapipe.cli", "taskrunner", "exec-task", f"--output={setup.folder / 'slow'}"]
    process = subprocess.Popen(
        command,
        env={**setup.env, "DATAPIPE_TASK": json.dumps(payload)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    attempt = setup.folder / "slow/tasks/batch/datapipe-dev-sales/Slow" / payload["execution"] / "Attempt=1"
    while not (attempt / "stdout").exists():
        assert process.poll() is None and time.monotonic() - started < 20, process.communicate()
        time.sleep(0.05)
    time.sleep(0.2)  # the command has started: its stdout file is opened just before it
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=20)
    assert (process.returncode, stdout) == (1, "")
    assert stderr.startswith("Error: TaskRunner.Interrupted: task runner ") and stderr.count("\n") == 1
    assert time.monotonic() - started < 20  # not the command's 60 s


def test_a_script_from_s3_runs_and_an_unreadable_one_is_sql_failed(setup: Setup) -> None:
    sql(setup.postgres, "DROP TABLE IF EXISTS from_s3; CREATE TABLE from_s3 (id integer)")
    setup.client("s3").put_object(Bucket=DATA_BUCKET, Key="sql/load.sql", Body=b"INSERT INTO from_s3 VALUES (?), (?);")
    activity = {
        "id": "Scripted",
        "type": "SqlActivity",
        "scriptUri": f"s3://{DATA_BUCKET}/sql/load.sql",
        "scriptArgument": ["7", "8"],
    }
    described = setup.run(task("SqlActivity", "Scripted", activity=activity, database=rds_database()))
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["rowCounts"] == [2]
    assert sql(setup.postgres, "SELECT id FROM from_s3 ORDER BY id") == [(7,), (8,)]
    activity = {**activity, "scriptUri": "s3://no-such-bucket-here/sql/load.sql"}
    described = setup.run(task("SqlActivity", "Scripted", activity=activity, database=rds_database()))
    assert (described["status"], described["error"]) == ("FAILED", "TaskRunner.SqlFailed")
    assert described["cause"].startswith(
        "Scripted: An error occurred (NoSuchBucket) when calling the GetObject operation"
    )


# ---------------------------------------------------------------------------------------------------------------------
# The definition's username with a secret holding the password alone (what the importer makes of `*password`)


def password_database(server: Server, reference: str) -> dict[str, Any]:
    database = {**jdbc_database(server), "username": USER, "passwordSecret": reference}
    del database["secretId"]
    return database


@pytest.mark.parametrize("store", ["secretsmanager", "ssm"])
def test_the_password_is_read_from_the_referenced_secret_or_securestring(setup: Setup, store: str) -> None:
    if store == "ssm":
        reference = "ssm:/rds/sales/password"
        setup.client("ssm").put_parameter(Name="/rds/sales/password", Value=PASSWORD, Type="SecureString",
                                          Overwrite=True)
    else:
        reference = "rds/sales-password"
        if not setup.client("secretsmanager").list_secrets(Filters=[{"Key": "name", "Values": [reference]}])[
                "SecretList"]:
            setup.client("secretsmanager").create_secret(Name=reference, SecretString=PASSWORD)
    sql(setup.postgres, "CREATE TABLE IF NOT EXISTS logins (store text, who text)")
    activity = {"id": "Login", "type": "SqlActivity", "script": "INSERT INTO logins VALUES (?, current_user)",
                "scriptArgument": [store]}
    described = setup.run(task("SqlActivity", "Login", activity=activity,
                               database=password_database(setup.postgres, reference)))
    assert described["status"] == "SUCCEEDED", described
    assert sql(setup.postgres, "SELECT who FROM logins WHERE store = %s", store) == [(USER,)]
    assert PASSWORD not in setup.log_text(json.loads(described["output"])["stdout"])


def test_a_missing_password_parameter_is_secret_unavailable_naming_it(setup: Setup) -> None:
    activity = {"id": "Nothing", "type": "SqlActivity", "script": "SELECT 1"}
    database = password_database(setup.postgres, "ssm:/rds/missing")
    described = setup.run(task("SqlActivity", "Nothing", activity=activity, database=database))
    assert (described["status"], described["error"]) == ("FAILED", "TaskRunner.SecretUnavailable")
    assert described["cause"].startswith("SalesDb: SSM parameter '/rds/missing' does not exist")
