#!/bin/sh
# Install the Linux desktop entry and icons for the current user.
#
#   packaging/install-desktop-entry.sh [EXEC]
#
# EXEC is the program the entry starts: by default this checkout's
# .venv/bin/rlhf-workbench (make setup builds it); give the path of a bundle's
# rlhf-workbench executable to install that instead. Files go under
# ${XDG_DATA_HOME:-~/.local/share}: applications/rlhf-workbench.desktop and
# icons/hicolor/{16x16..256x256,scalable}/apps/rlhf-workbench.{png,svg}.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
exec_path=${1:-"$root/.venv/bin/rlhf-workbench"}
case "$exec_path" in /*) ;; *) exec_path="$(pwd)/$exec_path" ;; esac
if [ ! -x "$exec_path" ]; then
    echo "error: $exec_path is not an executable (run 'make setup' first, or give the path)" >&2
    exit 1
fi
data=${XDG_DATA_HOME:-"$HOME/.local/share"}

for size in 16 32 48 64 128 256; do
    install -Dm644 "$root/resources/icons/app-$size.png" \
        "$data/icons/hicolor/${size}x${size}/apps/rlhf-workbench.png"
done
install -Dm644 "$root/resources/icons/app.svg" "$data/icons/hicolor/scalable/apps/rlhf-workbench.svg"

mkdir -p "$data/applications"
# Exec= with an absolute path: a desktop session's PATH rarely includes a venv.
# Quoted per the Desktop Entry spec, so a path with spaces works.
quoted=$(printf '%s' "$exec_path" | sed 's/\\/\\\\/g; s/"/\\"/g')
sed "s|^Exec=.*|Exec=\"$quoted\" gui|" "$here/rlhf-workbench.desktop" \
    > "$data/applications/rlhf-workbench.desktop"
chmod 644 "$data/applications/rlhf-workbench.desktop"

if command -v desktop-file-validate >/dev/null 2>&1; then
    desktop-file-validate "$data/applications/rlhf-workbench.desktop"
fi
update-desktop-database "$data/applications" 2>/dev/null || true
gtk-update-icon-cache -q -t "$data/icons/hicolor" 2>/dev/null || true
echo "installed $data/applications/rlhf-workbench.desktop (Exec: $exec_path gui)"
