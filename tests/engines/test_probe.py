import pytest
from helpers import report

@pytest.mark.parametrize("engine_app", ["firefox", "webkit"], indirect=True)
def test_probe(engine_app):
    page = engine_app
    print(engine_app.engine, page.boot_seconds, report(page)["tokens"])
    print(page.errors(), page.guard.console[-5:], page.guard.page_errors)
    print(page.evaluate("[innerWidth, innerHeight, devicePixelRatio, document.documentElement.clientWidth]"))
    page.screenshot("probe-%s.png" % page.engine)
    page.assert_local()
