"""Times the web console with 1,000 streams (issue 21: "fast with 1,000
streams"): a riffle on free ports and a temporary data dir, 1,000 one-shard
streams, then Debian's Chromium (through Playwright) loads the overview
until the first page of rows shows each stream's shard count, goes to the
next page, and filters.

    .venv/bin/python scripts/bench-console.py target/release/riffle

(`scripts/test-python --venv-only` makes the venv; `scripts/test-python`
installs Chromium when it is missing.)"""
import concurrent.futures, shutil, socket, subprocess, sys, tempfile, time
import boto3
from botocore.config import Config
from playwright.sync_api import sync_playwright

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

binary = sys.argv[1]
api, con = free_port(), free_port()
with tempfile.TemporaryDirectory() as d:
    srv = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{api}", "--console-listen", f"127.0.0.1:{con}", "--data-dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", api), 0.2).close(); break
            except OSError:
                time.sleep(0.05)
        k = boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{api}", region_name="us-east-1",
                         aws_access_key_id="x", aws_secret_access_key="x", config=Config(retries={"max_attempts": 0}))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: k.create_stream(StreamName=f"many-{i:04d}", ShardCount=1), range(1000)))
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = b.new_page()
            times = []
            for run in range(6):
                t0 = time.perf_counter()
                page.goto(f"http://127.0.0.1:{con}/")
                page.wait_for_selector('tr[data-stream="many-0099"] [data-col="shards"]:text-is("1")')
                times.append(time.perf_counter() - t0)
            nexts = []
            for run in range(5):
                page.goto(f"http://127.0.0.1:{con}/")
                page.wait_for_selector('tr[data-stream="many-0099"] [data-col="shards"]:text-is("1")')
                t0 = time.perf_counter()
                page.get_by_role("button", name="Next").click()
                page.wait_for_selector('tr[data-stream="many-0150"] [data-col="shards"]:text-is("1")')
                nexts.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            page.get_by_label("Filter streams").fill("many-09")
            page.wait_for_selector('tr[data-stream="many-0999"] [data-col="shards"]:text-is("1")')
            filt = time.perf_counter() - t0
            b.close()
        print("next page (s):", [round(t, 3) for t in nexts], "filter to the 100 rows of many-09 (s):", round(filt, 3))
        print("overview to first page of rows with summaries (s):", [round(t, 3) for t in times])
    finally:
        srv.kill(); srv.wait()
