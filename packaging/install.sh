#!/bin/sh
# Puts FitStudio into this user's application menu: the desktop entry (FitStudio.desktop, its Exec
# pointing at the FitStudio program beside this script) and the icon, under $XDG_DATA_HOME
# (default ~/.local/share). Nothing outside that folder is touched, so no root is needed.
#
#   ./install.sh               add (or update, after moving the folder) the menu entry
#   ./install.sh --uninstall   remove it again (the program folder itself stays where it is)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-${HOME:?HOME is not set; set HOME or XDG_DATA_HOME}/.local/share}
entry=$data_home/applications/FitStudio.desktop
icon=$data_home/icons/hicolor/256x256/apps/fitstudio.png

refresh_menu() {
    # Menus notice new entries by themselves; these caches only make it immediate where they exist.
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data_home/applications" || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$data_home/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$entry" "$icon"
    refresh_menu
    echo "Removed FitStudio from the application menu ($entry)."
    exit 0
fi
if [ $# -gt 0 ]; then
    echo "usage: $0 [--uninstall]" >&2
    exit 2
fi
if [ ! -x "$here/FitStudio" ]; then
    echo "install.sh: no FitStudio program beside this script, in $here" >&2
    exit 1
fi

# The desktop entry spec quotes Exec's path in double quotes, with \ " ` $ escaped by a backslash.
escaped=$(printf '%s' "$here/FitStudio" | sed 's/[\\"`$]/\\&/g')
mkdir -p "$data_home/applications" "$(dirname "$icon")"
cp "$here/fitstudio.png" "$icon"
sed -e "s|^Exec=.*|Exec=\"$(printf '%s' "$escaped" | sed 's/[|&\\]/\\&/g')\"|" \
    "$here/FitStudio.desktop" > "$entry.tmp"
mv "$entry.tmp" "$entry"
chmod 644 "$entry"
refresh_menu
echo "Added FitStudio to the application menu ($entry)."
