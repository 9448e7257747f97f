#!/usr/bin/env bash
# Push the outputs that dvc.lock names to the project's default DVC remote, so that any pushed
# commit's report can be fetched later (`dvc pull`, `dvc get --rev`). CI runs this on the main
# branch after `make ci` passed.
#
# Skips with a notice (exit 0) when no default remote is configured or its credentials are
# absent, so forks and new set-ups stay green. Credentials, from the environment:
#   s3://   AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN, AWS_DEFAULT_REGION
#           optional); the dvc-s3 plugin is installed if missing
#   gs://   GCS_SERVICE_ACCOUNT_KEY, a service account's JSON key (written to a private temporary
#           file for GOOGLE_APPLICATION_CREDENTIALS); the dvc-gs plugin is installed if missing
#   other   (a local directory, ssh, ...) whatever dvc's own config provides
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -x .venv/bin/dvc ]]; then
    PATH="$PWD/.venv/bin:$PATH"
fi

notice() {
    # A GitHub Actions annotation there, a plain line elsewhere.
    if [[ -n "${GITHUB_ACTIONS:-}" ]]; then echo "::notice::$*"; else echo "$*"; fi
}

if ! remote=$(dvc remote default 2>/dev/null) || [[ -z "$remote" ]]; then
    notice "dvc push skipped: no default DVC remote (see docs/ci.md, 'Versioned reports in CI')"
    exit 0
fi
url=$(dvc config "remote.$remote.url")

ensure_plugin() {
    # The remote's filesystem plugin, pinned where requirements.lock pins its dependencies.
    local package=$1 module=$2
    python -c "import $module" 2>/dev/null && return
    if command -v uv >/dev/null; then
        uv pip install --quiet --python "$(command -v python)" --constraint requirements.lock "$package"
    else
        python -m pip install --quiet --constraint requirements.lock "$package"
    fi
}

case "$url" in
    s3://*)
        if [[ -z "${AWS_ACCESS_KEY_ID:-}" || -z "${AWS_SECRET_ACCESS_KEY:-}" ]]; then
            notice "dvc push skipped: remote '$remote' is S3 and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set"
            exit 0
        fi
        ensure_plugin dvc-s3 dvc_s3
        ;;
    gs://*)
        if [[ -z "${GCS_SERVICE_ACCOUNT_KEY:-}" && -z "${GOOGLE_APPLICATION_CREDENTIALS:-}" ]]; then
            notice "dvc push skipped: remote '$remote' is GCS and GCS_SERVICE_ACCOUNT_KEY is not set"
            exit 0
        fi
        if [[ -n "${GCS_SERVICE_ACCOUNT_KEY:-}" ]]; then
            key=$(umask 077 && mktemp "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/gcs-key.XXXXXX")
            trap 'rm -f "$key"' EXIT
            printf '%s' "$GCS_SERVICE_ACCOUNT_KEY" >"$key"
            export GOOGLE_APPLICATION_CREDENTIALS=$key
        fi
        ensure_plugin dvc-gs dvc_gs
        ;;
esac

dvc push --remote "$remote"
notice "dvc push: the outputs of $(git rev-parse --short HEAD) are in remote '$remote'"
