#!/usr/bin/env bash
# The Python venv for bench/extract_score.py (trafilatura 2.x beside primer's `extract`):
# creates ~/.cache/primer/venv-bench (or $PRIMER_BENCH_VENV) with the pinned packages below,
# does nothing when it is already there with exactly these pins, and prints its python.
#
#   PY=$(bench/extract_venv.sh) && "$PY" bench/extract_score.py --site ../shared/data/sites/python-3.11-docs --trafilatura
set -euo pipefail
venv="${PRIMER_BENCH_VENV:-$HOME/.cache/primer/venv-bench}"
# trafilatura 2.3.1 and lxml_html_clean (justext imports lxml.html.clean, which lxml 6 no
# longer ships) plus what pip resolved for them on Python 3.11.
pins="trafilatura==2.3.1 lxml==6.2.1 lxml_html_clean==0.4.7 courlan==1.4.0 htmldate==1.11.0
jusText==3.0.2 charset-normalizer==3.5.3 urllib3==2.8.0 certifi==2026.10.19.post1
dateparser==1.5.0 python-dateutil==4.0.0 tld==0.13.2 babel==2.19.0 regex==2026.12.2
pytz==2026.6 tzdata==2026.6 tzlocal==5.4.5"
stamp="$venv/.primer-pins"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]; then
    python3 -m venv "$venv" >&2
    # shellcheck disable=SC2086
    "$venv/bin/pip" install -q --disable-pip-version-check $pins >&2
    "$venv/bin/python" -c "import trafilatura, lxml.html" >&2
    printf '%s' "$pins" > "$stamp"
fi
echo "$venv/bin/python"
