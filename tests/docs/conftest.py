"""At the end of a run that ran the docs snippets, say how many ran and list the opt-outs."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter) -> None:
    pages = blocks = 0
    seconds = cpu_seconds = 0.0
    opted_out: list[str] = []
    costs: list[tuple[float, str]] = []
    for report in terminalreporter.stats.get("passed", []):
        properties = dict(report.user_properties)
        if report.when != "call" or "snippets_run" not in properties:
            continue
        pages += 1
        blocks += properties["snippets_run"]
        seconds += properties["snippets_seconds"]
        cpu_seconds += properties.get("snippets_cpu_seconds", 0.0)
        costs.append((properties.get("snippets_cpu_seconds", 0.0), report.nodeid))
        opted_out.extend(properties["snippets_opted_out"])
    if not pages:
        return
    terminalreporter.write_sep("-", "docs snippets")
    terminalreporter.write_line(
        f"{blocks} python blocks run on {pages} pages in {seconds:.1f} s "
        f"({cpu_seconds:.1f} CPU-seconds); "
        f"{len(opted_out)} opted out" + (":" if opted_out else "")
    )
    for entry in opted_out:
        terminalreporter.write_line(f"  {entry}")
    heaviest = ", ".join(
        f"{nodeid.rpartition('[')[2].rstrip(']')} {cost:.1f}"
        for cost, nodeid in sorted(costs)[-3:][::-1]
    )
    terminalreporter.write_line(f"heaviest pages (CPU-seconds): {heaviest}")
