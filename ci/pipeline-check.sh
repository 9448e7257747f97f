#!/usr/bin/env bash
# The pipeline check that CI runs on every pull request and push (.github/workflows/pipeline.yml)
# and `make ci` runs locally: rebuild the pipeline, fail if the committed dvc.lock (and the
# metrics committed with it) is not what the rebuild produced, and write what changed against a
# base revision (`dvc metrics diff`, `dvc params diff`) as markdown.
#
# Needs dvc and the pipeline's python first on PATH (`make ci` sees to that). Environment:
#   BASE_REV          revision to compare with (default HEAD: what your working tree changes);
#                     one that does not resolve (a first push, a shallow clone) falls back to HEAD
#   QUICKDRAW_LIMIT   unset or empty: the bundled demo data, as committed. A number N: real data,
#                     the first N drawings per category from QUICKDRAW_SOURCE (params.yaml and
#                     dvc.lock are then changed in the working tree and the lock check is skipped,
#                     since the committed lock describes the demo data)
#   QUICKDRAW_SOURCE  the real data's base URL (default: Google's bucket)
#   SUMMARY           where the markdown goes (default reports/ci-summary.md); it is also
#                     appended to $GITHUB_STEP_SUMMARY when GitHub Actions sets that
set -euo pipefail
cd "$(dirname "$0")/.."

SUMMARY=${SUMMARY:-reports/ci-summary.md}
LIMIT=${QUICKDRAW_LIMIT:-}
SOURCE=${QUICKDRAW_SOURCE:-https://storage.googleapis.com/quickdraw_dataset/full}
# What the lock check compares: the lock and the metrics/plots files committed beside it.
COMMITTED=(dvc.lock "reports/*.json")

fail() {
    echo "error: $*" >&2
    exit 2
}

command -v dvc >/dev/null || fail "dvc is not on PATH; run 'make ci' (it sets up .venv first)"
git rev-parse --verify --quiet HEAD >/dev/null || fail "no commit to check: HEAD does not resolve"

base=${BASE_REV:-HEAD}
base_note=""
if ! git rev-parse --verify --quiet "${base}^{commit}" >/dev/null; then
    base_note=" (\`${base}\` is not available here; compared with HEAD instead)"
    base=HEAD
fi

# 1. Rebuild.
if [[ -z "$LIMIT" ]]; then
    mode="demo data (params.yaml as committed)"
    dvc repro
else
    [[ "$LIMIT" =~ ^[1-9][0-9]{0,8}$ ]] || fail "QUICKDRAW_LIMIT must be a positive integer, got '$LIMIT'"
    [[ "$SOURCE" =~ ^(https?|file)://[^[:space:]\']+$ ]] || fail "QUICKDRAW_SOURCE must be an http(s) or file URL, got '$SOURCE'"
    mode="real data: the first $LIMIT drawings per category from $SOURCE"
    # `dvc exp run -S` edits params.yaml the way `dvc repro` reads it, then reproduces.
    dvc exp run -S "dataset.base_url=$SOURCE" -S "dataset.limit=$LIMIT"
fi

# 2. The committed lock must be what the rebuild produced (the pipeline is deterministic).
lock_status=0
lock_diff=""
lock_why=""
if [[ -z "$LIMIT" ]]; then
    lock_diff=$(git diff --no-color HEAD -- "${COMMITTED[@]}") || true
    if [[ -n "$lock_diff" ]]; then
        lock_status=1
        lock_result="**failed**: \`dvc repro\` produced a different \`dvc.lock\` than the one committed; each output that differs, and what to do:"
        # Each differing output, told apart: a stale lock, or the same inputs giving other bytes.
        committed_lock=$(mktemp)
        git show HEAD:dvc.lock >"$committed_lock" 2>/dev/null || true
        lock_why=$(python ci/lock_diff.py "$committed_lock" dvc.lock) || lock_why="- (ci/lock_diff.py failed; see the job log)"
        rm -f "$committed_lock"
    else
        lock_result="passed: \`dvc repro\` reproduced the committed \`dvc.lock\` exactly."
    fi
else
    lock_result="skipped: real-data mode changes params.yaml, so the committed (demo) \`dvc.lock\` cannot match."
fi

# 3. What changed against the base, as markdown.
diff_table() {
    # A table with no row under its header means nothing changed.
    local kind=$1 output
    output=$(dvc "$kind" diff --md "$base") || {
        echo "\`dvc $kind diff\` failed; see the job log."
        return
    }
    if [[ $(grep -c '^|' <<<"$output") -le 2 ]]; then
        echo "No $kind changed."
    else
        printf '%s\n' "$output"
    fi
}

mkdir -p "$(dirname "$SUMMARY")"
{
    echo "## Quick, Draw! report: $(git rev-parse --short HEAD)"
    echo
    echo "- Data: $mode"
    echo "- Compared with: \`$base\` ($(git rev-parse --short "$base"))$base_note"
    echo "- dvc.lock check: $lock_result"
    [[ -z "$lock_why" ]] || printf '%s\n' "$lock_why" | sed 's/^/  /'
    for html in reports/*.html; do
        [[ -e "$html" ]] || continue
        echo "- \`$html\`: $(wc -c <"$html") bytes, sha256 \`$(sha256sum "$html" | cut -d' ' -f1)\`"
    done
    echo
    echo "### Metrics (\`dvc metrics diff\`)"
    echo
    diff_table metrics
    echo
    echo "### Parameters (\`dvc params diff\`)"
    echo
    diff_table params
    if [[ -n "$lock_diff" ]]; then
        echo
        echo "<details><summary>How the rebuilt dvc.lock differs from the committed one</summary>"
        echo
        echo '```diff'
        printf '%s\n' "$lock_diff"
        echo '```'
        echo
        echo "</details>"
    fi
} >"$SUMMARY"

if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    cat "$SUMMARY" >>"$GITHUB_STEP_SUMMARY"
fi
cat "$SUMMARY"

if [[ $lock_status -ne 0 ]]; then
    echo "error: the committed dvc.lock is not what 'dvc repro' produced (see $SUMMARY):" >&2
    printf '%s\n' "$lock_why" >&2
fi
exit "$lock_status"
