"""The web console in a real browser: Debian's headless chromium, driven by Playwright, against a real stack
(the API served by uvicorn on loopback, and every consumer).

Screenshots of each page go to ``.artifacts/console/`` (printed by the tests), at 1280x800 and 390 px wide,
and in the dark scheme for one page.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from ingestro.database import keys
from ingestro.database.keys import Scope
from ingestro.streams.names import DLQ_STREAM
from tests.served import app_of, served
from tests.stack import Stack, StackFactory
from tests.test_dlq import dead_letter, letter

pytestmark = pytest.mark.system

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts" / "console"
HOSTILE_NAME = "<img src=x onerror=window.__pwned=1>.csv"
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}


def contacts_file() -> tuple[bytes, dict[str, int]]:
    """30 rows, a header with an unknown column (Nickname) and no optional age: 17 valid, 13 rejected."""
    lines = [" EMAIL ,first_name,last_name,signup_date,Nickname"]
    for n in range(17):
        lines.append(f"person{n}@example.com,First{n},Last{n},2024-01-{n + 1:02d},nick{n}")
    for n in range(8):  # invalid_email, one holding HTML
        lines.append(f"<b>bad{n}</b>,First,Last,2024-02-01,x")
    for n in range(4):
        lines.append(f"late{n}@example.com,First,Last,someday{n},x")  # invalid_date
    lines.append("nobody@example.com,,Last,2024-03-01,x")  # required first_name
    return ("\n".join(lines) + "\n").encode(), {"invalid_email": 8, "invalid_date": 4, "required": 1}


#: A header with HTML in its names, HTML in its cells, and no last_name: the job fails on the header.
HOSTILE_FILE = (
    b'email,first_name,"<b onmouseover=alert(1)>name</b>",signup_date\n'
    b"<i>x</i>@example.com,<script>alert(1)</script>,z,2024-01-01\n"
)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium: scripts/install-system-deps installs it")
    args = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # chromium's sandbox refuses to run as root
    async with async_playwright() as playwright:
        # launch() gives each run a fresh, temporary user-data dir; each test has a new context besides.
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    print(f"\nconsole screenshots: {ARTIFACTS}")
    return ARTIFACTS


class Console:
    """A browser context on the console, failing the test on any script error or CSP violation."""

    def __init__(self, context: BrowserContext, page: Page, base_url: str, artifacts: Path) -> None:
        self.context, self.page, self.base_url, self.artifacts = context, page, base_url, artifacts
        self.problems: list[str] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        page.on("request", lambda request: self.requests.append((request.url, request.headers)))
        page.on(
            "response",
            lambda response: response.status >= 400 and self.problems.append(f"{response.status} {response.url}"),
        )

    async def open(self, fragment: str = "") -> None:
        await self.page.goto(f"{self.base_url}/{fragment}")

    async def shoot(self, name: str, *, narrow: bool = True) -> None:
        await self.page.screenshot(path=str(self.artifacts / f"{name}-1280.png"), full_page=True)
        if narrow:
            await self.page.set_viewport_size(NARROW)
            await self.page.screenshot(path=str(self.artifacts / f"{name}-390.png"), full_page=True)
            await self.page.set_viewport_size(WIDE)

    def expected_problems(self, *allowed: str) -> list[str]:
        """The problems logged, less the refusals the test provoked (the browser logs each 4xx)."""
        return [
            text
            for text in self.problems
            if not text.startswith("Failed to load resource") and not any(text.startswith(code) for code in allowed)
        ]


async def console_on(browser: Browser, base_url: str, artifacts: Path, **options: Any) -> Console:
    context = await browser.new_context(viewport=WIDE, accept_downloads=True, **options)
    return Console(context, await context.new_page(), base_url, artifacts)


async def test_upload_match_live_job_and_rejected_rows(stack: Stack, browser: Browser, artifacts: Path) -> None:
    stack.start_consumers()
    content, codes = contacts_file()
    async with served(app_of(stack)) as base_url:
        console = await console_on(browser, base_url, artifacts)
        page = console.page
        await console.open()
        await expect(page.locator("#dataset")).to_have_value("contacts")
        await page.set_input_files(
            "#files",
            files=[
                {"name": "contacts.csv", "mimeType": "text/csv", "buffer": content},
                {"name": HOSTILE_NAME, "mimeType": "text/csv", "buffer": HOSTILE_FILE},
            ],
        )
        first, hostile = page.locator("li.file").nth(0), page.locator("li.file").nth(1)
        # The header as read in the browser, matched like the server (trimmed, any case), Nickname unknown.
        await expect(first.locator(".match-summary")).to_contain_text("4 of 5 columns match dataset contacts")
        rows = first.locator("table.columns tbody tr")
        await expect(rows.nth(0)).to_contain_text("EMAIL")
        await expect(rows.nth(0)).to_contain_text("email")
        await expect(rows.nth(0)).to_contain_text("matched")
        await expect(rows.nth(4)).to_contain_text("Nickname")
        await expect(rows.nth(4)).to_contain_text("unknown: ignored")
        await expect(first.locator(".all-required")).to_be_visible()
        await expect(first.locator(".optional-missing")).to_have_text(
            "Optional fields without a column: age, metadata, id."
        )
        # The hostile file: its name, header names and cells are text, and its missing field is said.
        await expect(hostile.locator(".file-name")).to_have_text(HOSTILE_NAME)
        await expect(hostile.locator(".missing")).to_contain_text("Missing required field: last_name")
        await expect(hostile.locator("table.columns")).to_contain_text("<b onmouseover=alert(1)>name</b>")
        await console.shoot("upload")

        await page.get_by_role("button", name="Upload").click()
        await expect(first.locator(".job-link")).to_be_visible()
        await expect(hostile.locator(".job-link")).to_be_visible()
        assert await first.locator("progress").get_attribute("value") == "100"
        job_link = await first.locator(".job-link").get_attribute("href")
        assert job_link is not None
        job_id = job_link.rsplit("/", 1)[1]

        # The job page follows the job live until it completes, with exact counts.
        await first.locator(".job-link").click()
        await expect(page.locator(".job-status .badge")).to_have_text("completed", timeout=30_000)
        counts = {
            name: page.locator(f'[data-count="{name}"]')
            for name in ("rows_total", "rows_accepted", "rows_rejected", "rows_inserted")
        }
        for name, expected in (("rows_total", 30), ("rows_accepted", 17), ("rows_rejected", 13), ("rows_inserted", 17)):
            await expect(counts[name]).to_have_text(str(expected))
        await expect(page.locator(".facts")).to_contain_text("Nickname")
        await expect(page.locator(".facts")).to_contain_text("rows/s")
        await expect(page.locator(".code-counts")).to_contain_text("invalid_email 8")
        await expect(page.locator(".code-counts")).to_contain_text("invalid_date 4")
        await expect(page.locator(".code-counts")).to_contain_text("required 1")

        # Paged by the API's cursors, 10 at a time.
        await page.select_option("#page-size", "10")
        error_rows = page.locator("table.errors tbody tr")
        await expect(error_rows).to_have_count(10)
        await expect(error_rows.nth(0)).to_contain_text("19")  # the first rejected line (header is line 1)
        await expect(error_rows.nth(0)).to_contain_text("'<b>bad0</b>' is not a valid email address")
        await console.shoot("job")
        await page.get_by_role("button", name="Next page").click()
        await expect(error_rows).to_have_count(3)
        await expect(page.locator(".page-number")).to_have_text("Page 2")
        await expect(page.get_by_role("button", name="Next page")).to_be_disabled()
        await page.get_by_role("button", name="Previous page").click()
        await expect(error_rows).to_have_count(10)

        # Filtered by code, then by field.
        await page.select_option("#filter-code", "invalid_date")
        await expect(error_rows).to_have_count(4)
        for n in range(4):
            await expect(error_rows.nth(n)).to_contain_text("invalid_date")
        async with page.expect_download() as waiting:
            await page.get_by_role("button", name="Download CSV").click()
        download = await waiting.value
        assert download.suggested_filename == f"{job_id}-errors.csv"
        saved = Path(await download.path()).read_text()
        exported = list(csv.DictReader(io.StringIO(saved)))
        assert [(row["line"], row["field"], row["code"]) for row in exported] == [
            (str(27 + n), "signup_date", "invalid_date") for n in range(4)
        ]
        await page.select_option("#filter-code", "")
        await page.select_option("#filter-field", "first_name")
        await expect(error_rows).to_have_count(1)
        await expect(error_rows.nth(0)).to_contain_text("required")

        # The jobs list: both jobs, the hostile one failed on its header, its name as text.
        await page.get_by_role("link", name="Jobs", exact=True).click()
        jobs = page.locator("table.jobs tbody tr")
        await expect(jobs).to_have_count(2)
        await expect(page.locator("table.jobs")).to_contain_text(HOSTILE_NAME)
        await expect(jobs.filter(has_text=HOSTILE_NAME).locator(".badge")).to_have_text("failed", timeout=30_000)
        await console.shoot("jobs")
        await jobs.filter(has_text=HOSTILE_NAME).get_by_role("link").click()
        await expect(page.locator(".job-error")).to_contain_text("last_name")
        await expect(page.locator("h1")).to_contain_text(HOSTILE_NAME)
        await console.shoot("job-failed", narrow=False)

        # Nothing from the file or the API became markup.
        assert await page.evaluate("window.__pwned") is None
        assert await page.locator("main img, main b, main i, main script").count() == 0
        assert console.expected_problems() == []
        await console.context.close()
    assert codes == {"invalid_email": 8, "invalid_date": 4, "required": 1}


#: A header none of whose columns but one is named like a contacts field: mapped in the page.
NEEDS_MAPPING = (
    b"E-mail address,Given,Family,email_opt_in,Joined\n"
    b"m1@example.com,Ann,Lee,yes,2024-01-05\n"
    b"m2@example.com,Bob,Ray,no,2024-01-06\n"
    b"not-an-email,Cy,Fox,yes,2024-01-07\n"
)


async def test_columns_are_mapped_in_the_page_saved_and_the_next_file_maps_itself(
    stack: Stack, browser: Browser, artifacts: Path
) -> None:
    stack.start_consumers()
    async with served(app_of(stack)) as base_url:
        console = await console_on(browser, base_url, artifacts)
        page = console.page
        await console.open()
        await expect(page.locator("#dataset")).to_have_value("contacts")
        await page.set_input_files(
            "#files", files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": NEEDS_MAPPING}]
        )
        item = page.locator("li.file").nth(0)
        await expect(item.locator(".missing")).to_contain_text("email, first_name, last_name, signup_date")
        # Each column has its select, by keyboard too: focus it and choose.
        for column, field in (("E-mail address", "email"), ("Given", "first_name"), ("Family", "last_name")):
            choice = item.get_by_label(f"Field for column {column}")
            await choice.focus()
            await choice.select_option(f"field:{field}")
            await expect(item.get_by_label(f"Field for column {column}")).to_be_focused()
        await item.get_by_label("Field for column Joined").select_option("field:signup_date")
        await item.get_by_label("Field for column email_opt_in").select_option("ignore")
        await expect(item.locator(".all-required")).to_be_visible()
        await expect(item.locator(".match-summary")).to_contain_text("4 of 5 columns match dataset contacts")
        await expect(item.locator("table.columns tbody tr").nth(3)).to_contain_text("ignored (mapping)")
        await item.get_by_role("button", name="Save this mapping").click()
        await expect(item.locator(".mapping-state")).to_contain_text("The mapping saved for these columns is applied")
        await console.shoot("upload-mapped", narrow=False)
        await page.get_by_role("button", name="Upload").click()
        await item.locator(".job-link").click()
        await expect(page.locator(".job-status .badge")).to_have_text("completed", timeout=30_000)
        for name, expected in (("rows_total", 3), ("rows_accepted", 2), ("rows_rejected", 1), ("rows_inserted", 2)):
            await expect(page.locator(f'[data-count="{name}"]')).to_have_text(str(expected))
        await expect(page.locator(".column-map")).to_contain_text("E-mail address → email")
        await expect(page.locator(".column-map")).to_contain_text("email_opt_in ignored")

        # A second file of the same shape (other case, other spaces) maps itself with the saved mapping.
        await page.get_by_role("link", name="Upload", exact=True).click()
        second = NEEDS_MAPPING.replace(b"E-mail address,Given", b"E-MAIL ADDRESS , given").replace(b"m1@", b"m3@")
        await page.set_input_files("#files", files=[{"name": "more.csv", "mimeType": "text/csv", "buffer": second}])
        item = page.locator("li.file").nth(0)
        await expect(item.locator(".mapping-state")).to_contain_text("The mapping saved for these columns is applied")
        await expect(item.locator(".all-required")).to_be_visible()
        await page.get_by_role("button", name="Upload").click()
        await item.locator(".job-link").click()
        await expect(page.locator(".job-status .badge")).to_have_text("completed", timeout=30_000)
        for name, expected in (("rows_total", 3), ("rows_accepted", 2), ("rows_rejected", 1), ("rows_inserted", 1)):
            await expect(page.locator(f'[data-count="{name}"]')).to_have_text(str(expected))
        await console.shoot("job-mapped", narrow=False)
        assert console.expected_problems() == []
        await console.context.close()
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts WHERE email LIKE 'm_@example.com'") == 3


def gzip_needing_mapping() -> bytes:
    """NEEDS_MAPPING's header over 3000 rows (about 120 KiB inflated: past the page's 64 KiB preview), gzip'd;
    every 500th row's email is invalid."""
    lines = [NEEDS_MAPPING.split(b"\n", 1)[0].decode()]
    for n in range(3000):
        email = f"not-an-email-{n}" if n % 500 == 499 else f"g{n}@example.com"
        lines.append(f"{email},Ann,Lee,yes,2024-01-05")
    return gzip.compress(("\n".join(lines) + "\n").encode())


async def test_a_gzip_files_header_is_read_in_the_page_mapped_and_the_file_uploaded(
    stack: Stack, browser: Browser, artifacts: Path
) -> None:
    stack.start_consumers()
    async with served(app_of(stack)) as base_url:
        console = await console_on(browser, base_url, artifacts)
        page = console.page
        await console.open()
        await expect(page.locator("#dataset")).to_have_value("contacts")
        content = gzip_needing_mapping()
        files = [{"name": "people.csv.gz", "mimeType": "application/gzip", "buffer": content}]
        await page.set_input_files("#files", files=files)
        item = page.locator("li.file").nth(0)
        await expect(item.locator(".match-summary")).to_contain_text("gzip: read from its first 64 KiB, inflated here")
        await expect(item.locator(".missing")).to_contain_text("email, first_name, last_name, signup_date")
        rows = item.locator("table.columns tbody tr")
        await expect(rows).to_have_count(5)
        await expect(rows.nth(0)).to_contain_text("E-mail address")
        for column, field in (
            ("E-mail address", "email"),
            ("Given", "first_name"),
            ("Family", "last_name"),
            ("Joined", "signup_date"),
        ):
            await item.get_by_label(f"Field for column {column}").select_option(f"field:{field}")
        await item.get_by_label("Field for column email_opt_in").select_option("ignore")
        await expect(item.locator(".all-required")).to_be_visible()
        await expect(item.locator(".match-summary")).to_contain_text("4 of 5 columns match dataset contacts")
        await console.shoot("upload-gzip", narrow=False)
        await page.get_by_role("button", name="Upload").click()
        await expect(item.locator(".file-status")).to_contain_text("(csv, dataset contacts v1)")
        await item.locator(".job-link").click()
        await expect(page.locator(".job-status .badge")).to_have_text("completed", timeout=60_000)
        for name, expected in (
            ("rows_total", 3000),
            ("rows_accepted", 2994),
            ("rows_rejected", 6),
            ("rows_inserted", 2994),
        ):
            await expect(page.locator(f'[data-count="{name}"]')).to_have_text(f"{expected:,}")
        await expect(page.locator(".column-map")).to_contain_text("E-mail address → email")
        assert console.expected_problems() == []
        await console.context.close()
    assert await stack.pool.fetchval("SELECT count(*) FROM contacts WHERE email LIKE 'g%@example.com'") == 2994


async def test_a_dataset_inferred_from_a_file_is_edited_and_declared(
    stack: Stack, browser: Browser, artifacts: Path
) -> None:
    orders = (
        b"Order ID,Customer,Total,Ordered on,Paid,Note\n"
        b"6f1c2b7e-0d3a-4c55-9a57-0b3e8d7c1a01,ann@example.com,12.50,13/04/2024,yes,\n"
        b"6f1c2b7e-0d3a-4c55-9a57-0b3e8d7c1a02,bob@example.com,7,01/05/2024,no,<b>rush</b>\n"
    )
    async with served(app_of(stack)) as base_url:
        console = await console_on(browser, base_url, artifacts, color_scheme="dark")
        page = console.page
        await console.open("#/datasets")
        await expect(page.locator("table.datasets")).to_contain_text("contacts")
        await page.set_input_files(
            "#infer-file", files=[{"name": "Orders.csv", "mimeType": "text/csv", "buffer": orders}]
        )
        await expect(page.locator("#infer-name")).to_have_value("orders")
        await page.get_by_role("button", name="Draft a declaration").click()
        editor = page.locator("#draft-toml")
        await expect(editor).to_be_visible()
        draft = await editor.input_value()
        assert 'name = "order_id"\ntype = "uuid"\nrequired = true\naliases = ["Order ID"]' in draft
        assert 'formats = ["%d/%m/%Y"]' in draft and 'name = "paid"\ntype = "boolean"' in draft
        assert 'name = "note"\ntype = "string"\n' in draft and "Candidate keys" in draft
        await expect(page.locator(".draft")).to_contain_text("Candidate keys: order_id")
        await console.shoot("datasets-dark")

        await editor.fill(draft.replace('name = "orders"\n', 'name = "orders"\nkey = ["order_id"]\n'))
        await page.get_by_role("button", name="Declare orders").click()
        await expect(page.locator(".outcome")).to_have_text("Dataset orders created: version 1.")
        await expect(page.locator("table.datasets")).to_contain_text("order_id")
        declared = (await stack.client.get("/datasets/orders")).json()
        assert declared["key"] == ["order_id"]
        # Declared again unchanged; then a broken edit is refused with the API's reason.
        await editor.fill('name = "orders"\n[[fields]]\nname = "x"\ntype = "nope"\n')
        await page.get_by_role("button", name="Declare orders").click()
        await expect(page.locator(".outcome [role=alert]")).to_contain_text("Not declared: Unprocessable Content")
        assert console.expected_problems("422") == []
        await console.context.close()
    stack.start_consumers()
    job = await stack.wait_for_job((await stack.upload(orders, dataset="orders"))["job_id"])
    assert (job["status"], job["rows_accepted"], job["rows_rejected"]) == ("completed", 2, 0)


async def test_a_secured_api_with_keys_shows_what_each_key_may_see(
    stack_factory: StackFactory, browser: Browser, artifacts: Path
) -> None:
    async for stack in stack_factory.open(keys=True):
        stack.start_consumers()
        _, admin = await keys.create(stack.pool, "ops", Scope.ADMIN, "default")
        _, stranger = await keys.create(stack.pool, "other", Scope.READ, "globex")
        auth = {"authorization": f"Bearer {admin}"}
        content, _ = contacts_file()
        uploaded = await stack.client.post("/upload", content=content, headers={"content-type": "text/csv", **auth})
        job_id = uploaded.json()["job_id"]
        await dead_letter(stack.redis, letter(seq=7))
        async with served(app_of(stack)) as base_url:
            console = await console_on(browser, base_url, artifacts)
            page = console.page
            await console.open("#/jobs")
            await expect(page.locator("h1")).to_have_text("This API needs a key")
            await console.shoot("sign-in")
            await page.fill("#api-key", "ingestro_nope_nope")
            await page.keyboard.press("Enter")
            await expect(page.get_by_role("alert")).to_contain_text(
                "The key was refused: Unauthorized: the API key is not valid (unknown or revoked)"
            )

            # Another tenant's key sees none of it.
            await page.fill("#api-key", stranger)
            await page.keyboard.press("Enter")
            await expect(page.locator("#access")).to_contain_text("Key set (not admin)")
            await expect(page.locator("#nav-operators")).to_be_hidden()
            await page.goto(f"{base_url}/#/jobs")
            await expect(page.locator("main")).to_contain_text("No jobs yet")
            await page.goto(f"{base_url}/#/jobs/{job_id}")
            await expect(page.get_by_role("alert")).to_contain_text(f"Not Found: no job {job_id}")
            await page.goto(f"{base_url}/#/operators")
            await expect(page.locator("main")).to_contain_text("Operators' views need an admin key")

            # The admin key sees the job, the dead letter, and redrives it.
            await page.get_by_role("button", name="Forget the key").click()
            await page.fill("#api-key", admin)
            await page.keyboard.press("Enter")
            await expect(page.locator("#access")).to_contain_text("Admin key")
            await page.goto(f"{base_url}/#/jobs")
            await expect(page.locator("table.jobs tbody tr")).to_have_count(1)
            await page.goto(f"{base_url}/#/jobs/{job_id}")
            await expect(page.locator('[data-count="rows_accepted"]')).to_have_text("17", timeout=30_000)
            await page.goto(f"{base_url}/#/operators")
            dead = page.get_by_role("region", name="Dead letters, oldest first")
            await expect(dead).to_contain_text("CheckViolationError")
            await expect(page.get_by_role("region", name="Streams and consumer groups")).to_contain_text("parser")
            await console.shoot("operators")
            await dead.get_by_role("button").click()
            await expect(page.locator("#notice")).to_contain_text("redriven to ingestro:rows-accepted")
            await expect(page.locator("main")).to_contain_text("No dead letters.")
            assert await stack.redis.xlen(DLQ_STREAM) == 0

            # The key travelled as a header only: never in a URL, and there are no cookies.
            api_calls = [(url, headers) for url, headers in console.requests if "/console/" not in url]
            assert all(admin not in url and stranger not in url for url, _ in console.requests)
            assert any(headers.get("authorization") == f"Bearer {admin}" for _, headers in api_calls)
            assert await console.context.cookies() == []
            assert console.expected_problems("401", "403", "404") == []
            await console.context.close()


#: Run in the console's page: its own modules, imported as the page imports them.
PARSERS = """async () => {
  const { EventStreamParser } = await import("/console/sse.js");
  const headers = await import("/console/headers.js");
  const events = [];
  const parser = new EventStreamParser((event) => events.push(event));
  const chunks = ["event: progress\\r", "\\ndata: {\\"a\\":1}\\r\\n\\r\\n: keepalive\\n\\n"];
  for (const chunk of [...chunks, "data: x\\ndata:y\\n", "\\n"]) parser.push(chunk);
  const dataset = {
    fields: [
      { name: "email", required: true, aliases: ["E-mail"] },
      { name: "age", required: false, aliases: [] },
      { name: "name", required: true, aliases: [] },
    ],
  };
  const gzip = (text) => new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"))).blob();
  const inflate = (blob) => new Response(blob.stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
  // 1.8 MB of CSV, gzip'd, then cut in half: inflating it all fails, its first 64 KiB read fine.
  const big = await gzip("email,name\\n" + "a@example.com,Ann\\n".repeat(100000));
  const halfGz = big.slice(0, Math.floor(big.size / 2));
  const fails = (promise) => promise.then(() => null, (error) => error.name);
  const head = await headers.inflatedHead(halfGz);
  const gz = (parts, name, options) => headers.readHeader(new File(parts, name, options));
  return {
    gzipped: {
      wholeFails: await fails(inflate(halfGz)),
      head: [head.bytes.length, head.cut],
      small: await headers.inflatedHead(await gzip("a,b\\n")).then(({ bytes, cut }) => [bytes.length, cut]),
      csv: await gz([halfGz], "big.CSV.GZ"),
      json: await gz([await gzip('[{"a": 1, "b": {"c": "x"}}]')], "x.json.gz"),
      typed: await gz([await gzip("a;b\\n1;2\\n")], "data", { type: "application/gzip" }),
      unnamed: await gz([await gzip("a,b\\n")], "x.csv"),
      corrupt: await gz([new Uint8Array([0x1f, 0x8b, 1, 2, 3, 4])], "x.csv.gz"),
      plain: await gz(["a,b\\n1,2\\n"], "x.csv.gz"),
    },
    events,
    ties: [headers.sniffDelimiter("a;b,c"), headers.sniffDelimiter("a|b\\tc"), headers.sniffDelimiter("abc")],
    records: headers.csvRecords('a,"b\\r\\nc","d""e"\\r\\n\\r\\n1,2,3\\n4', ",", 10),
    formats: ["x.CSV.gz", "x.jsonl", "x.json", "x.dat"].map(headers.formatOf),
    first: headers.firstObject('[ {"a": "}{", "b": {"c": 1}}, {"cut'),
    match: headers.matchColumns(dataset, [" e-MAIL ", "Email", "extra"]),
    mapped: headers.matchColumns(
      dataset, ["Mail", " E-mail", "Name", "x"], { mail: "email", "e-mail": null, X: "age" }
    ),
  };
}"""


async def test_the_pages_own_parsers_read_events_headers_and_matches_like_the_server(
    stack: Stack, browser: Browser, artifacts: Path
) -> None:
    async with served(app_of(stack)) as base_url:
        console = await console_on(browser, base_url, artifacts)
        await console.open()
        result = await console.page.evaluate(PARSERS)
        await console.context.close()
    assert result["events"] == [
        {"event": "progress", "data": '{"a":1}', "id": None},
        {"event": "message", "data": "x\ny", "id": None},
    ]
    assert result["ties"] == [",", "\t", ","]  # ingestro.formats.csv_rows.DELIMITERS order breaks ties
    assert result["records"] == [["a", "b\r\nc", 'd"e'], ["1", "2", "3"], ["4"]]
    assert result["formats"] == ["csv", "ndjson", "json", None]
    # A gzip file: only its first 64 KiB inflated (a file whose whole stream fails is still previewed).
    gzipped = result["gzipped"]
    assert gzipped["wholeFails"] == "TypeError"
    assert gzipped["head"] == [64 * 1024, True]
    assert gzipped["small"] == [4, False]
    big_rows = [["a@example.com", "Ann"]] * 5
    expected_csv = {
        "format": "csv",
        "columns": ["email", "name"],
        "rows": big_rows,
        "delimiter": ",",
        "compressed": True,
    }
    assert gzipped["csv"] == expected_csv
    assert gzipped["json"] == {
        "format": "json",
        "columns": ["a", "b"],
        "rows": [["1", '{"c":"x"}']],
        "compressed": True,
    }
    typed = {"format": "csv", "columns": ["a", "b"], "rows": [["1", "2"]], "delimiter": ";", "compressed": True}
    assert gzipped["typed"] == typed
    assert "its name does not end in .gz" in gzipped["unnamed"]["unreadable"]
    assert gzipped["corrupt"]["unreadable"].startswith("not a readable gzip stream (")
    assert gzipped["plain"]["unreadable"].startswith("not a readable gzip stream (")
    assert result["first"] == {"a": "}{", "b": {"c": 1}}
    assert result["match"] == {
        "matches": [
            {"column": " e-MAIL ", "field": "email", "state": "matched"},
            {"column": "Email", "field": "email", "state": "duplicate"},
            {"column": "extra", "field": None, "state": "unknown"},
        ],
        "missing": ["name"],
        "optional": ["age"],
    }
    # A mapping is applied first, its columns compared like the server's (trimmed, any case).
    assert result["mapped"] == {
        "matches": [
            {"column": "Mail", "field": "email", "state": "mapped"},
            {"column": " E-mail", "field": None, "state": "ignored"},
            {"column": "Name", "field": "name", "state": "matched"},
            {"column": "x", "field": "age", "state": "mapped"},
        ],
        "missing": [],
        "optional": [],
    }
