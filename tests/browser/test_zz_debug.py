from helpers import report, status, wait_js
def test_dbg(new_page, server):
    page, guard = new_page("pyodide")
    page.goto(server.url("/web/index.html"))
    wait_js(page, "() => ['ready', 'error'].includes(document.body.dataset.state)", timeout=180_000)
    print("STATUS", status(page), report(page).get("frame"), report(page).get("draws"))
    page.select_option("#layer", "3")
    page.wait_for_timeout(3000)
    print("STATUS2", status(page), report(page).get("layer"), report(page).get("frame"))
    print("\n".join(guard.console[-20:]), guard.page_errors)
