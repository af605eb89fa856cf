from pathlib import Path

import pytest

from streams.config import ConfigError, load_config

GOOD = """
api: {url: "http://127.0.0.1:8000", key: secret}
model: ../models/streetwatch-demo
sample_interval_s: 2
issues:
  flooding: {confirm_seconds: 30}
cameras:
  - name: gate-3
    url: rtsp://127.0.0.1:8554/gate
    lat: 31.2
    lon: 121.4
    grid_id: g-12
    zones:
      road: {polygon: [[0, 300], [960, 300], [960, 540], [0, 540]], issue_types: [flooding]}
    masks: [[[0, 0], [100, 0], [100, 100]]]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "edge.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_valid_config_loads_with_defaults_and_relative_model(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.cameras[0].zones["road"].issue_types[0].value == "flooding"
    assert config.issue("flooding").confirm_seconds == 30
    assert config.issue("clutter").confirm_seconds == 10  # default
    assert config.model == (tmp_path / "models" / "streetwatch-demo").resolve()


@pytest.mark.parametrize(
    "old,new,field",
    [
        ("grid_id: g-12", "grid_idd: g-12", "cameras.0.grid_idd"),  # typo in a key
        ("lat: 31.2", "lat: 131.2", "cameras.0.lat"),
        ("url: rtsp://127.0.0.1:8554/gate", "url: http://cam/gate", "cameras.0.url"),
        ("flooding: {confirm_seconds: 30}", "floods: {confirm_seconds: 30}", "issues.floods"),
        ('url: "http://127.0.0.1:8000"', 'url: "ftp://x"', "api.url"),
        # half a position: the API refuses such events, so the box must not start with it
        ("    lon: 121.4\n", "", "cameras.0"),
        ("grid_id: g-12", "grid_id: " + "g" * 101, "cameras.0.grid_id"),
        # URLs that passed and then failed at runtime: retried forever, or killing the edge
        ("url: rtsp://127.0.0.1:8554/gate", "url: 'rtsp://'", "cameras.0.url"),
        ("url: rtsp://127.0.0.1:8554/gate", "url: rtsp://cam:notaport/x", "cameras.0.url"),
        ("url: rtsp://127.0.0.1:8554/gate", "url: rtsp://127.0.0.1:99999/x", "cameras.0.url"),
        ("url: rtsp://127.0.0.1:8554/gate", "url: 'rtsp://[::1/x'", "cameras.0.url"),
        ('url: "http://127.0.0.1:8000"', 'url: "http://host:abc"', "api.url"),
        ('url: "http://127.0.0.1:8000"', 'url: "http://"', "api.url"),
        ("key: secret", "key: kéy", "api.key"),  # cannot travel in an HTTP header
        # an error inside a mask written as a mapping names it (was "should be a valid list")
        ("masks: [[[0, 0], [100, 0], [100, 100]]]",
         "masks: [{polygon: [[0, 0], [100, 0], [100, 100]], issue_types: [potholes]}]", "masks.0.mask.issue_types.0"),
    ],
)
def test_bad_field_gives_one_line_error_naming_it(tmp_path, old, new, field):
    assert old in GOOD
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, GOOD.replace(old, new)))
    message = str(err.value)
    assert field in message and "\n" not in message


def test_duplicate_camera_names_rejected(tmp_path):
    text = GOOD + "  - {name: gate-3, url: rtsp://127.0.0.1:8554/other}\n"
    with pytest.raises(ConfigError, match="repeated: gate-3"):
        load_config(write(tmp_path, text))


def test_broken_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "cameras: [\n  - {name: a"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("detector: tensorflow\n", "detector"),
        ("decode: sometimes\n", "decode"),
        ("timezone: Mars/Olympus\n", "timezone"),
        ("outbox: {path: x, max_mb: 0}\n", "outbox.max_mb"),
        ("http: {port: 99999}\n", "http.port"),
        ("max_batch: 0\n", "max_batch"),
        ("backoff_initial_s: 10\nbackoff_max_s: 5\n", "backoff_initial_s"),
        # inf and 1e300 passed `gt=0` and overflowed the clock in a camera thread at runtime
        ("open_timeout_s: .inf\n", "open_timeout_s"),
        ("backoff_max_s: 1e300\n", "backoff_max_s"),
        ("stall_timeout_s: .nan\n", "stall_timeout_s"),
    ],
)
def test_edge_box_settings_errors_name_the_field(tmp_path, extra, field):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, extra + GOOD))
    assert field in str(err.value) and "\n" not in str(err.value)


def test_a_repeated_key_or_a_file_that_is_not_text_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"line 5: 'sample_interval_s' is given twice \(first on line 1\)"):
        load_config(write(tmp_path, "sample_interval_s: 5\n" + GOOD))  # GOOD says 2: which one?
    with pytest.raises(ConfigError, match="not UTF-8"):
        path = write(tmp_path, "")
        path.write_bytes(b"cameras: \xfa\xfb\n")
        load_config(path)


def test_example_config_validates_and_relative_outbox_follows_the_file():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "streetwatch.example.yaml")
    assert config.outbox.path == root / "var" / "outbox"
    assert config.cameras[0].masks[1].hours == ["18:00-23:00"] and config.cameras[0].zones["road"].anchor == (0.5, 0.5)
