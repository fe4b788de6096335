"""Benchmark: seconds from submitting a label (a key press in the real browser) to the next post shown, over
100 labels, with `lingualoop demo` serving the app and Debian's chromium driven by playwright. Prints p50/p95.

    python -m bench.annotate                  # 100 labels
    python -m bench.annotate --labels 200
"""

import argparse
import statistics
import tempfile
from pathlib import Path

from tests.browser.server import browser_page, press_and_wait_for_next_post, running_server, sign_in


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument(
        "--warmup", type=int, default=5, help="Labels before timing starts (page and caches warm)."
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="llannotate-") as folder,
        running_server(Path(folder)) as server,
        browser_page() as page,
    ):
        sign_in(page, server.url, "admin")  # the admin labels every language of the demo (about 260 posts)
        page.locator(".lingualoop-post").first.wait_for()
        for i in range(args.warmup):
            press_and_wait_for_next_post(page, "1234"[i % 4])
        timings = sorted(press_and_wait_for_next_post(page, "1234"[i % 4]) for i in range(args.labels))
    p95 = timings[int(0.95 * (len(timings) - 1))]
    print(
        f"label -> next post over {len(timings)} labels (real chromium, SQLite): "
        f"p50 {statistics.median(timings) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {timings[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
