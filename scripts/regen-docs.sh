#!/usr/bin/env bash
# Regenerate the committed manual pages (man/) and shell completion scripts (completions/) from
# the CLI definitions, after any change to a subcommand, flag or help text. tests/it/docs_fresh.rs
# fails until they are regenerated and committed.
#
#   scripts/regen-docs.sh && git add man completions
set -euo pipefail
cd "$(dirname "$0")/.."
# The pages do not depend on settings; an empty configuration keeps the operator's own out.
export ORCH_CONFIG=/dev/null
unset ORCH_COLOR
cargo build --quiet
rm -rf man completions
cargo run --quiet -- man --dir man >/dev/null
cargo run --quiet -- completions --dir completions >/dev/null
echo "regenerated man/ and completions/"
