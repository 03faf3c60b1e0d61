"""The web console in a real browser: Debian's Chromium driven by Playwright
against a real `riffle serve` with its console on a listener of its own.
What a test does in the page (a form, a click) is checked with boto3 and
the other way round; every page is saved as a screenshot under
target/console-screenshots/ (CI keeps it)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from playwright.sync_api import expect, sync_playwright

from conftest import RiffleServer, make_client
from kinesis_helpers import REGION, create_active_stream, get_records, iterator, register_active, shard_id

# The banner line that names the console (README, "Console").
CONSOLE_LINE = re.compile(r"^\s*console:\s+(http://\S+/)\s*$", re.MULTILINE)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "target" / "console-screenshots"
# Bounds on waiting for what the page shows, never sleeps to hope: the
# charts poll every 2 s and need two polls around the records.
UI_TIMEOUT_MS = 20_000
DEADLINE_S = 30.0
ACCOUNT = "000000000000"
NO_RETRIES = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})


def console_url(srv: RiffleServer) -> str:
    text = (srv.log_dir / "riffle-1.stdout").read_text()
    match = CONSOLE_LINE.search(text)
    assert match, f"no console line in the banner:\n{text}"
    return match.group(1)


def start_console_server(tmp: Path, *extra: str) -> RiffleServer:
    srv = RiffleServer(data_dir=tmp / "data", log_dir=tmp, console_listen="127.0.0.1:0", extra_args=list(extra))
    srv.start()
    srv.console = console_url(srv)
    return srv


def stop(srv: RiffleServer) -> None:
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing (scripts/test-python installs it)"
    with sync_playwright() as p:
        # Root in a container has no user namespaces for Chromium's sandbox.
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    srv = start_console_server(tmp_path_factory.mktemp("console"))
    yield srv
    stop(srv)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(UI_TIMEOUT_MS)
    errors = []
    pg.on("pageerror", lambda err: errors.append(str(err)))
    yield pg
    context.close()
    assert not errors, f"the page threw: {errors}"


def shot(pg, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def kinesis(srv):
    return make_client(srv.endpoint)


def test_the_banner_names_the_console_and_it_serves_the_page_and_its_api(console):
    import urllib.request

    with urllib.request.urlopen(console.console, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/html")
        assert b'<script type="module" src="/app.js">' in r.read()
    with urllib.request.urlopen(console.console + "api/server", timeout=10) as r:
        facts = json.load(r)
    assert facts["fsync"] == "always"
    assert facts["dataDir"] == str(console.data_dir)
    # A POST without the console's header (what a page of another origin
    # could send) is refused.
    req = urllib.request.Request(console.console + "api/call", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert refused.value.code == 403


def test_console_listen_off_serves_no_console(tmp_path):
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, console_listen="off")
    srv.start()
    try:
        assert not CONSOLE_LINE.search((tmp_path / "riffle-1.stdout").read_text())
    finally:
        stop(srv)


def test_a_taken_default_console_address_starts_the_server_without_a_console(tmp_path):
    import socket

    holder = socket.socket()
    try:
        # Taken by this socket, or already by something else: taken either way.
        holder.bind(("127.0.0.1", 4568))
        holder.listen()
    except OSError:
        pass
    try:
        srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, console_listen=None)
        srv.start()
        try:
            assert not CONSOLE_LINE.search((tmp_path / "riffle-1.stdout").read_text())
            assert "the console's default address is taken" in srv.stderr_tail()
            # The API serves as ever.
            assert kinesis(srv).list_streams()["StreamNames"] == []
        finally:
            stop(srv)
    finally:
        holder.close()


def test_a_stream_created_in_the_form_appears_on_the_overview(console, page):
    page.goto(console.console)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("dd", has_text=str(console.data_dir))).to_be_visible()
    form = page.get_by_role("form", name="Create a stream")
    form.get_by_label("Stream name").fill("console-created")
    form.get_by_label("Shards").fill("3")
    form.get_by_role("button", name="Create").click()
    row = page.locator('tr[data-stream="console-created"]')
    expect(row).to_be_visible()
    expect(row.locator('[data-col="shards"]')).to_have_text("3")
    # The SDK sees what the form made.
    summary = kinesis(console).describe_stream_summary(StreamName="console-created")["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3
    shot(page, "overview")


def test_records_put_with_boto3_show_in_the_record_browser_and_the_chart(console, page):
    client = kinesis(console)
    create_active_stream(client, "clicks", shards=2)
    page.goto(console.console + "#/stream/clicks")
    chart = page.locator('[data-chart="Incoming records"]')
    expect(chart).to_be_visible()
    # Records arrive while the page polls, so the chart has a rate to draw.
    deadline = time.monotonic() + DEADLINE_S
    # A rate above zero, and a few points so the screenshot shows a line.
    while float(chart.get_attribute("data-last") or 0) <= 0 or int(chart.get_attribute("data-points") or 0) < 3:
        assert time.monotonic() < deadline, "the incoming-records chart never showed the records"
        client.put_records(
            StreamName="clicks",
            Records=[{"PartitionKey": f"user-{i}", "Data": json.dumps({"n": i}).encode()} for i in range(20)],
        )
        page.wait_for_timeout(500)
    shot(page, "stream")

    page.goto(console.console + "#/records/clicks")
    form = page.get_by_role("form", name="Read records")
    form.get_by_label("Show data as").select_option("json")
    form.get_by_role("button", name="Read").click()
    records = page.get_by_role("table", name="Records")
    expect(records.locator("tbody tr").first).to_be_visible()
    expect(records).to_contain_text("user-0")
    expect(records).to_contain_text('"n": 0')
    # Follow live: a record put now shows without another click.
    form.get_by_label("Follow live").check()
    client.put_record(StreamName="clicks", PartitionKey="late-key", Data=b"arrived while following")
    expect(records).to_contain_text("arrived while following")
    form.get_by_label("Follow live").uncheck()
    # Put a test record from the page; the SDK reads it back.
    put = page.get_by_role("form", name="Put a test record")
    put.get_by_label("Partition key").fill("from-the-console")
    put.get_by_label("Data").fill("hello from the browser")
    put.get_by_role("button", name="Put record").click()
    expect(put.get_by_role("status")).to_contain_text("Put into shardId-")
    shot(page, "records")


def test_kpl_aggregated_records_are_expanded_in_the_record_browser(console, page):
    import aws_kinesis_agg.aggregator as agg

    client = kinesis(console)
    create_active_stream(client, "kpl-agg")
    aggregator = agg.RecordAggregator()
    for i in range(3):
        aggregator.add_user_record(f"pk-{i}", f"user record {i}".encode())
    pk, ehk, data = aggregator.clear_and_get().get_contents()
    client.put_record(StreamName="kpl-agg", PartitionKey=pk, Data=data, **({"ExplicitHashKey": ehk} if ehk else {}))
    page.goto(console.console + "#/records/kpl-agg")
    page.get_by_role("form", name="Read records").get_by_role("button", name="Read").click()
    records = page.get_by_role("table", name="Records")
    for i in range(3):
        expect(records).to_contain_text(f"user record {i}")
        expect(records).to_contain_text(f"pk-{i}")


def series_of(chart) -> dict:
    """Each series' latest sample in a chart, by its label (None: no sample)."""
    return json.loads(chart.get_attribute("data-series") or "{}")


def test_an_efo_consumers_millis_behind_latest_is_charted_beside_the_polling_age(console, page):
    client = kinesis(console)
    create_active_stream(client, "fanned")
    arn = register_active(client, "fanned", "reader")
    client.put_records(StreamName="fanned", Records=[{"PartitionKey": f"k{i}", "Data": b"x"} for i in range(10)])
    events = client.subscribe_to_shard(
        ConsumerARN=arn, ShardId=shard_id(0), StartingPosition={"Type": "TRIM_HORIZON"}
    )["EventStream"]
    try:
        assert len(next(iter(events))["SubscribeToShardEvent"]["Records"]) == 10
        # A polling reader as well: GetRecords' own iterator age.
        get_records(client, ShardIterator=iterator(client, "fanned", shard_id(0)))
        page.goto(console.console + "#/stream/fanned")
        chart = page.locator('[data-chart="Iterator age"]')
        legend = chart.locator(".u-legend")
        expect(legend).to_contain_text("Polling (GetRecords)")
        expect(legend).to_contain_text("reader (enhanced fan-out)")
        behind = page.locator('tr[data-consumer="reader"] [data-col="behind"]')
        expect(behind).to_have_text(re.compile(r"^\d+ ms$"))
        # Samples of the consumer's own series, enough for a line.
        page.wait_for_function(
            """() => {
                const box = document.querySelector('[data-chart="Iterator age"]');
                const last = JSON.parse(box.dataset.series || "{}")["reader (enhanced fan-out)"];
                return typeof last === "number" && Number(box.dataset.points) >= 3;
            }""",
            timeout=UI_TIMEOUT_MS,
        )
        assert "Polling (GetRecords)" in series_of(chart)
        shot(page, "stream-consumers")
        # Deregistered: its series goes at once, its subscription with it.
        client.deregister_stream_consumer(ConsumerARN=arn)
        expect(behind).to_have_text("not subscribed")
    finally:
        events.close()


def test_splitting_a_shard_in_the_form_shows_the_lineage_in_the_shard_map(console, page):
    client = kinesis(console)
    create_active_stream(client, "to-split")
    page.goto(console.console + "#/stream/to-split")
    expect(page.locator('g[data-state="open"]')).to_have_count(1)
    form = page.get_by_role("form", name="Split a shard")
    form.get_by_role("button", name="Split").click()
    expect(form.get_by_role("status")).to_contain_text("Splitting shardId-000000000000 at 170141183460469231731687303715884105728")
    # The page reloads the stream once the split is asked for.
    expect(page.locator('g[data-state="closed"][data-shard="shardId-000000000000"]')).to_have_count(1)
    expect(page.locator('g[data-state="open"]')).to_have_count(2)
    expect(page.locator("line.lineage")).to_have_count(2)
    shards = client.list_shards(StreamName="to-split")["Shards"]
    children = [s for s in shards if s.get("ParentShardId") == "shardId-000000000000"]
    assert len(children) == 2
    shot(page, "stream-split")


def test_an_invalid_retention_shows_aws_message_inline(console, page):
    create_active_stream(kinesis(console), "retained")
    page.goto(console.console + "#/stream/retained")
    form = page.get_by_role("form", name="Retention period")
    form.get_by_label("Retention (hours)").fill("9000")
    form.get_by_role("button", name="Set retention").click()
    alert = form.get_by_role("alert")
    expect(alert).to_have_text(
        "InvalidArgumentException: Maximum allowed retention period is 8760 hours. "
        "Requested retention period (9000 hours) is too long."
    )
    shot(page, "stream-error")


def test_a_firehose_delivery_shows_its_objects_and_the_s3_browser_previews_them(console, page):
    firehose = boto3.client("firehose", endpoint_url=console.endpoint, region_name=REGION, config=NO_RETRIES)
    s3 = boto3.client("s3", endpoint_url=console.endpoint, region_name=REGION, config=NO_RETRIES)
    s3.create_bucket(Bucket="deliveries")
    firehose.create_delivery_stream(
        DeliveryStreamName="to-s3",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            "BucketARN": "arn:aws:s3:::deliveries",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )
    deadline = time.monotonic() + DEADLINE_S
    while firehose.describe_delivery_stream(DeliveryStreamName="to-s3")["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    firehose.put_record_batch(DeliveryStreamName="to-s3", Records=[{"Data": b'{"delivered":true}\n'}])
    while not s3.list_objects_v2(Bucket="deliveries").get("Contents"):
        assert time.monotonic() < deadline, "nothing delivered"
        time.sleep(0.1)
    key = s3.list_objects_v2(Bucket="deliveries")["Contents"][0]["Key"]

    page.goto(console.console)
    expect(page.locator('tr[data-delivery="to-s3"] [data-col="status"]')).to_have_text("ACTIVE")
    page.get_by_role("link", name="to-s3").click()
    expect(page.get_by_role("heading", name="to-s3")).to_be_visible()
    link = page.get_by_role("link", name=key)
    expect(link).to_be_visible()
    shot(page, "delivery")
    link.click()
    expect(page.get_by_label("Preview")).to_have_text('{"delivered":true}\n')
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_bytes() == b'{"delivered":true}\n'
    shot(page, "s3-object")
    page.goto(console.console + "#/s3/deliveries")
    expect(page.get_by_role("table", name="Objects")).to_contain_text(key.split("/")[0] + "/")
    shot(page, "s3-bucket")


def test_a_delivery_streams_buffer_fills_against_its_hints_and_its_delivery_is_counted(console, page):
    firehose = boto3.client("firehose", endpoint_url=console.endpoint, region_name=REGION, config=NO_RETRIES)
    s3 = boto3.client("s3", endpoint_url=console.endpoint, region_name=REGION, config=NO_RETRIES)
    s3.create_bucket(Bucket="filling")
    # The longest interval AWS allows: only the size hint flushes here.
    firehose.create_delivery_stream(
        DeliveryStreamName="slow-fill",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            "BucketARN": "arn:aws:s3:::filling",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 900},
        },
    )
    deadline = time.monotonic() + DEADLINE_S
    while firehose.describe_delivery_stream(DeliveryStreamName="slow-fill")["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    small = [{"Data": json.dumps({"n": i}).encode() + b"\n"} for i in range(5)]
    assert firehose.put_record_batch(DeliveryStreamName="slow-fill", Records=small)["FailedPutCount"] == 0

    page.goto(console.console + "#/delivery/slow-fill")
    panel = page.locator("[data-buffer]")
    expect(panel.locator('[data-col="records"]')).to_have_text("5")
    small_bytes = sum(len(r["Data"]) for r in small)
    expect(panel.locator('[data-col="bytes"]')).to_contain_text(f"{small_bytes} B of 1.0 MiB")
    expect(panel.locator('[data-col="delivered"]')).to_have_text("0")
    expect(page.get_by_label("Buffer fill")).to_have_attribute("value", str(small_bytes))
    assert not s3.list_objects_v2(Bucket="filling").get("Contents"), "flushed before its size"
    shot(page, "delivery-buffer")

    # Past SizeInMBs: flushed at once, then counted as delivered.
    big = [{"Data": b"y" * (600 * 1024)} for _ in range(2)]
    assert firehose.put_record_batch(DeliveryStreamName="slow-fill", Records=big)["FailedPutCount"] == 0
    # A read returns at least one record however big, so the buffer takes
    # both and goes as one object of all seven.
    expect(panel.locator('[data-col="objects"]')).to_have_text("1")
    expect(panel.locator('[data-col="delivered"]')).to_have_text("7")
    expect(panel.locator('[data-col="records"]')).to_have_text("0")
    objects = s3.list_objects_v2(Bucket="filling")["Contents"]
    assert len(objects) == 1 and objects[0]["Size"] >= 1024 * 1024
    # The list of objects delivered follows, without a reload.
    expect(page.get_by_role("link", name=objects[0]["Key"])).to_be_visible()
    deliveries = page.locator('[data-chart="Deliveries"] .u-legend')
    expect(deliveries).to_contain_text("Objects stored")
    expect(deliveries).to_contain_text("Failed puts")
    shot(page, "delivery-delivered")


def test_the_s3_browser_shows_a_parquet_objects_schema_and_first_rows(console, page):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    s3 = boto3.client("s3", endpoint_url=console.endpoint, region_name=REGION, config=NO_RETRIES)
    s3.create_bucket(Bucket="tables")
    table = pa.table({"user": ["ann", "bob"], "clicks": pa.array([3, 5], type=pa.int64())})
    out = io.BytesIO()
    pq.write_table(table, out)
    s3.put_object(Bucket="tables", Key="2026/part-0.parquet", Body=out.getvalue())
    page.goto(console.console + "#/s3/tables?key=" + "2026%2Fpart-0.parquet")
    schema = page.get_by_label("Schema")
    expect(schema).to_contain_text("user")
    expect(schema).to_contain_text("INT64 clicks")
    expect(page.get_by_label("Preview")).to_contain_text('user: "bob"')
    expect(page.get_by_text("Parquet, 2 rows")).to_be_visible()
    shot(page, "s3-parquet")


def test_keyboard_navigation_reaches_the_forms(console, page):
    page.goto(console.console)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    name_input = page.get_by_role("form", name="Create a stream").get_by_label("Stream name")
    for _ in range(60):
        page.keyboard.press("Tab")
        if name_input.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the create-stream form")
    page.keyboard.type("typed-by-keyboard")
    page.keyboard.press("Enter")
    expect(page.locator('tr[data-stream="typed-by-keyboard"]')).to_be_visible()


def test_the_overview_fits_a_phone_screen(console, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    pg = context.new_page()
    pg.goto(console.console)
    expect(pg.get_by_role("heading", name="Overview")).to_be_visible()
    # Nothing wider than the screen: the tables scroll inside their boxes.
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    shot(pg, "overview-phone")
    create_active_stream(kinesis(console), "on-a-phone", shards=2)
    pg.goto(console.console + "#/stream/on-a-phone")
    expect(pg.locator('[data-chart="Incoming bytes"] canvas')).to_be_visible()
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    shot(pg, "stream-phone")
    context.close()


def test_the_overview_of_a_thousand_streams_shows_a_page_of_rows_with_their_summaries(tmp_path, page):
    import concurrent.futures

    srv = start_console_server(tmp_path)
    try:
        client = kinesis(srv)

        def create(i):
            client.create_stream(StreamName=f"many-{i:04d}", ShardCount=1)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(1000)))
        page.goto(srv.console)
        expect(page.get_by_text("1000 of 1000 streams")).to_be_visible()
        # One page of rows, each with the shard count of its summary.
        expect(page.locator("tr[data-stream]")).to_have_count(100)
        expect(page.locator('tr[data-stream="many-0099"] [data-col="shards"]')).to_have_text("1")
        page.get_by_role("button", name="Next").click()
        expect(page.locator('tr[data-stream="many-0150"] [data-col="shards"]')).to_have_text("1")
        page.get_by_label("Filter streams").fill("many-09")
        expect(page.get_by_text("100 of 1000 streams")).to_be_visible()
        expect(page.locator('tr[data-stream="many-0999"] [data-col="shards"]')).to_have_text("1")
        shot(page, "overview-1000")
    finally:
        stop(srv)


def test_event_source_mappings_and_functions_show_on_the_overview(tmp_path, page):
    config = tmp_path / "riffle.toml"
    config.write_text(
        '[functions.consumer]\nurl = "http://127.0.0.1:9/2015-03-31/functions/function/invocations"\n\n'
        '[functions.local]\ncommand = ["python3", "-c", "pass"]\nmax_instances = 2\n'
    )
    srv = start_console_server(tmp_path, "--config", str(config))
    try:
        create_active_stream(kinesis(srv), "triggered")
        lam = boto3.client("lambda", endpoint_url=srv.endpoint, region_name=REGION, config=NO_RETRIES)
        uuid = lam.create_event_source_mapping(
            EventSourceArn=f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/triggered",
            FunctionName="consumer",
            StartingPosition="LATEST",
            Enabled=False,
            BatchSize=7,
        )["UUID"]
        page.goto(srv.console)
        row = page.locator(f'tr[data-mapping="{uuid}"]')
        expect(row).to_contain_text("consumer")
        expect(row.get_by_role("link", name="triggered")).to_be_visible()
        expect(row).to_contain_text("7")
        expect(row.locator("td").nth(2)).to_have_text(lam.get_event_source_mapping(UUID=uuid)["State"])
        # The [functions] of the config: how each runs, instances running now.
        url_fn = page.locator('tr[data-function="consumer"]')
        expect(url_fn.locator('[data-col="kind"]')).to_have_text("URL")
        expect(url_fn).to_contain_text("http://127.0.0.1:9/2015-03-31/functions/function/invocations")
        expect(url_fn.locator('[data-col="instances"]')).to_have_text("–")
        command_fn = page.locator('tr[data-function="local"]')
        expect(command_fn.locator('[data-col="kind"]')).to_have_text("command")
        expect(command_fn.locator('[data-col="instances"]')).to_have_text("0 of 2")
        expect(command_fn).to_contain_text(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:local")
        shot(page, "overview-functions")
    finally:
        stop(srv)


# ---------- a server that verifies signatures ----------

ADMIN, ADMIN_SECRET = "AKIDCONSOLEADMIN", "admin-secret"
NODELETE, NODELETE_SECRET = "AKIDCONSOLENODEL", "nodelete-secret"
NO_DELETE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "kinesis:DeleteStream", "Resource": "*"},
    ],
}


@pytest.fixture(scope="module")
def governed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("governed")
    policy = tmp / "nodelete.json"
    policy.write_text(json.dumps(NO_DELETE))
    config = tmp / "riffle.toml"
    config.write_text(
        f'[credentials]\n{ADMIN} = "{ADMIN_SECRET}"\n{NODELETE} = "{NODELETE_SECRET}"\n\n'
        f'[policies]\n{NODELETE} = "{policy}"\n'
    )
    srv = start_console_server(tmp, "--config", str(config), "--audit-log", str(tmp / "audit.log"))
    srv.audit = tmp / "audit.log"
    yield srv
    stop(srv)


def sign_in(pg, key: str, secret: str) -> None:
    form = pg.get_by_role("form", name="Sign in")
    form.get_by_label("Access key ID").fill(key)
    form.get_by_label("Secret access key").fill(secret)
    form.get_by_role("button", name="Sign in").click()


def test_a_wrong_secret_is_refused_at_sign_in(governed, page):
    page.goto(governed.console)
    sign_in(page, NODELETE, "not-the-secret")
    expect(page.get_by_role("form", name="Sign in").get_by_role("alert")).to_contain_text(
        "UnrecognizedClientException"
    )
    shot(page, "sign-in")


def test_a_key_whose_policy_denies_deletion_cannot_delete_and_the_attempt_is_audited(governed, page):
    admin = make_client(governed.endpoint, key_id=ADMIN, secret=ADMIN_SECRET)
    create_active_stream(admin, "kept")
    page.goto(governed.console)
    sign_in(page, NODELETE, NODELETE_SECRET)
    expect(page.get_by_text(f"Signed in as {NODELETE}")).to_be_visible()
    page.goto(governed.console + "#/stream/kept")
    page.once("dialog", lambda dialog: dialog.accept())
    form = page.get_by_role("form", name="Delete this stream")
    form.get_by_role("button", name="Delete stream").click()
    expect(form.get_by_role("alert")).to_have_text(
        f"AccessDeniedException: User: arn:aws:iam::{ACCOUNT}:user/{NODELETE} is not authorized to perform: "
        f"kinesis:DeleteStream on resource: arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/kept "
        "with an explicit deny in an identity-based policy"
    )
    shot(page, "stream-denied")
    assert admin.describe_stream_summary(StreamName="kept")["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    deadline = time.monotonic() + DEADLINE_S
    while True:
        lines = [json.loads(l) for l in governed.audit.read_text().splitlines() if l]
        denied = [
            l for l in lines
            if l["eventName"] == "DeleteStream" and l["userIdentity"].get("accessKeyId") == NODELETE
        ]
        if denied:
            break
        assert time.monotonic() < deadline, "the denied DeleteStream was not audited"
        time.sleep(0.1)
    assert denied[0]["errorCode"] == "AccessDeniedException"
    assert denied[0]["requestParameters"]["streamName"] == "kept"
