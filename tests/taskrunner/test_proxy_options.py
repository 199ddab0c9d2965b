"""Task Runner's proxy options: one-line errors naming the option, NTLM refused rather than ignored, the password
from the command line (with a warning), the --config file or the environment, never shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from datapipe.cli import cli
from datapipe.errors import DatapipeError
from datapipe.taskrunner.cli import Credentials, make_clients, read_shared_options
from datapipe.taskrunner.proxy import NTLM_REFUSAL, Proxy

PASSWORD = "p@ss:w/rd %41"


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["taskrunner", "--workerGroup=wg-1", *args], env=env)


def stderr_lines(result: Any) -> list[str]:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--proxyPort", "3128"), "Error: --proxyPort needs --proxyHost: the proxy's host name or address"),
        (("--proxyUsername", "u"), "Error: --proxyUsername needs --proxyHost"),
        (("--proxyHost", "proxy.example.com"), "Error: --proxyHost needs --proxyPort: the proxy's port"),
        (("--proxyHost", "proxy.example.com", "--proxyPort", "0"), "Error: --proxyPort must be a port number from 1"),
        (("--proxyHost", "proxy.example.com", "--proxyPort", "http"), "Error: --proxyPort must be a port number"),
        (("--proxyHost", "user@evil.example.com", "--proxyPort", "80"), "Error: --proxyHost must be a host name or"),
        (("--proxyHost", "h/x", "--proxyPort", "80"), "Error: --proxyHost must be a host name or an IP address"),
        (("--proxyHost", "h" * 5000, "--proxyPort", "80"), "Error: --proxyHost must be a host name or an IP address"),
        (
            ("--proxyHost", "h", "--proxyPort", "80", "--proxyUsername", "a:b"),
            "Error: --proxyUsername must be non-empty",
        ),
        (("--proxyDomain", "CORP"), f"Error: {NTLM_REFUSAL}"),
        (("--proxyHost", "h", "--proxyPort", "80", "--proxyWorkstation", "PC1"), f"Error: {NTLM_REFUSAL}"),
    ],
)
def test_bad_proxy_options_get_one_line_naming_the_option(args: tuple[str, ...], message: str) -> None:
    lines = stderr_lines(invoke(*args))
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert len(lines[0]) < 500


def test_a_proxy_password_on_the_command_line_warns_and_is_never_shown() -> None:
    result = invoke("--proxyHost", "h", "--proxyPort", "80", "--proxyPassword", PASSWORD)
    lines = stderr_lines(result)
    assert lines[0].startswith("Warning: --proxyPassword on the command line can be read by every process")
    assert lines[1] == "Error: a proxy password needs --proxyUsername: basic authentication sends both"
    assert PASSWORD not in result.output


def shared(**options: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "region": None,
        "log_uri": None,
        "config_file": None,
        "access_id": None,
        "secret_key": None,
        "endpoint": None,
        "output_dir": Path("."),
        "task_role_arn": None,
        "task_role_duration": "3600",
        "proxy_host": "127.0.0.1",
        "proxy_port": "3128",
        "proxy_username": "runner",
        "proxy_password": None,
        "proxy_domain": None,
        "proxy_workstation": None,
    }
    values.update(options)
    return values


def test_the_proxy_password_comes_from_the_command_line_the_config_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAPIPE_PROXY_PASSWORD", "from-environment")
    assert read_shared_options(**shared(output_dir=tmp_path)).proxy == Proxy(
        "127.0.0.1", 3128, "runner", "from-environment"
    )
    config = tmp_path / "credentials.json"
    config.write_text(json.dumps({"proxy-password": "from-file"}))
    config.chmod(0o600)
    common = read_shared_options(**shared(output_dir=tmp_path, config_file=config))
    assert common.proxy is not None and common.proxy.password == "from-file"
    common = read_shared_options(**shared(output_dir=tmp_path, config_file=config, proxy_password="from-option"))
    assert common.proxy is not None and common.proxy.password == "from-option"
    assert "from-option" not in repr(common) and "from-file" not in repr(common)
    config.write_text(json.dumps({"proxy-password": "from-file"}))
    with pytest.raises(DatapipeError, match=r"^a proxy password needs --proxyUsername"):
        read_shared_options(**shared(output_dir=tmp_path, config_file=config, proxy_username=None))
    assert read_shared_options(**shared(output_dir=tmp_path, proxy_username=None)).proxy == Proxy("127.0.0.1", 3128)
    with pytest.raises(DatapipeError, match=r"^--config: 'proxy-password' in .* must be a non-empty string$"):
        config.write_text(json.dumps({"proxy-password": 5}))
        read_shared_options(**shared(output_dir=tmp_path, config_file=config))


def test_every_client_of_the_runner_is_given_the_proxy_with_the_password_percent_encoded() -> None:
    proxy = Proxy("127.0.0.1", 3128, "runner", PASSWORD)
    clients = make_clients(credentials=Credentials(), region="eu-west-1", endpoint=None, tasks=1, proxy=proxy)
    # Worked by hand: @ -> %40, : -> %3A, / -> %2F, space -> %20, % -> %25.
    expected = "http://runner:p%40ss%3Aw%2Frd%20%2541@127.0.0.1:3128"
    for client in (clients.sfn, clients.s3, clients.sts, clients.secrets_manager, clients.ssm):
        assert client.meta.config.proxies == {"http": expected, "https": expected}
    assert proxy.url(with_password=False) == "http://runner@127.0.0.1:3128"
    assert PASSWORD not in repr(proxy)
