"""The command line and lifecycle of the real binary (foundation issue)."""
import os
import re
import signal
import time

from conftest import SOURCE_DIR, run_bridge, write_config

EXAMPLE = os.path.join(SOURCE_DIR, "etc", "takhin-bridge.cfg")
EX_USAGE, EX_CONFIG = 64, 78


def test_version_names_every_library():
    r = run_bridge("-V")
    assert r.returncode == 0
    # The versions Debian 12 ships, read from the libraries at run time.
    assert re.search(r"^takhin-bridge \d+\.\d+\.\d+$", r.stdout, re.M)
    assert re.search(r"^librdkafka 2\.0\.2$", r.stdout, re.M)
    assert re.search(r"^libwebsockets 4\.1\.6", r.stdout, re.M)
    assert re.search(r"^json-c 0\.16$", r.stdout, re.M)
    assert re.search(r"^libconfig 1\.5\.\d+$", r.stdout, re.M)


def test_help_and_usage_errors():
    r = run_bridge("--help")
    assert r.returncode == 0 and "--check-config" in r.stdout and "--dump-config" in r.stdout
    r = run_bridge("--no-such-flag")
    assert r.returncode == EX_USAGE
    r = run_bridge("--cycles", "zero")
    assert r.returncode == EX_USAGE and "--cycles" in r.stderr


def test_example_config_checks():
    r = run_bridge("-t", "-c", EXAMPLE)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{EXAMPLE}: configuration OK"


def test_misspelled_key_is_a_file_line_error(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text('kafka = {\n  bootstrap_servers = "127.0.0.1:9092";\n'
                   '  pol_interval_ms = 1000;\n};\n')
    r = run_bridge("-t", "-c", str(cfg))
    assert r.returncode == EX_CONFIG
    assert r.stderr.startswith(f"{cfg}:3: unknown setting 'kafka.pol_interval_ms'"), r.stderr
    assert "kafka.poll_interval_ms" in r.stderr  # the suggestion


def test_bad_librdkafka_property_is_a_file_line_error(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text('kafka = {\n  bootstrap_servers = "127.0.0.1:9092";\n  properties = [\n'
                   '    "socket.timeout.ms=1000",\n    "security.protocol=CARRIER_PIGEON"\n'
                   '  ];\n};\n')
    r = run_bridge("-c", str(cfg))
    assert r.returncode == EX_CONFIG
    assert r.stderr.startswith(f"{cfg}:5: kafka.properties:"), r.stderr


def test_missing_config_file(tmp_path):
    r = run_bridge("-t", "-c", str(tmp_path / "nope.cfg"))
    assert r.returncode == EX_CONFIG
    assert str(tmp_path / "nope.cfg") in r.stderr


def test_dump_config_redacts_secrets_and_round_trips(tmp_path):
    secret_key, secret_pw = "k-" + "9" * 20, "pw-" + "7" * 20
    keys = tmp_path / "keys"
    keys.write_text(f"# comment\n{secret_key}\n")
    cfg = tmp_path / "c.cfg"
    write_config(str(cfg), {
        "kafka.bootstrap_servers": "127.0.0.1:9092",
        "kafka.properties": ["sasl.password=" + secret_pw, "socket.timeout.ms=1000"],
        "auth.api_keys": ["inline-" + "5" * 20],
        "auth.api_keys_file": str(keys),
    })
    r = run_bridge("-T", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for secret in (secret_key, secret_pw, "inline-" + "5" * 20):
        assert secret not in out
    assert "<redacted>" in out
    assert "socket.timeout.ms=1000" in out
    assert re.search(r"poll_interval_ms\s*=\s*2000\s*;", out)  # defaults included
    assert re.search(r"port\s*=\s*8080\s*;", out)


def test_daemon_connects_logs_and_stops_on_sigterm(bridge):
    b = bridge(kafka=True)
    deadline = time.monotonic() + 60
    while "broker(s)" not in b.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert re.search(r"connected to \S+: 1 broker\(s\), \d+ topic\(s\)", b.stderr_text()), \
        b.stderr_text()
    assert b.stop(signal.SIGTERM) == 0, b.stderr_text()


def test_daemon_stops_on_sigint_without_kafka(bridge):
    b = bridge(kafka=False)
    assert "Kafka not reachable yet" in b.stderr_text()
    assert b.stop(signal.SIGINT) == 0, b.stderr_text()
