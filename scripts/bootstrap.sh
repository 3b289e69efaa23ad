# Sourced by scripts/run and scripts/test: Debian packages, then .venv with Loa installed.
# Usage: bootstrap [EXTRAS]   e.g. bootstrap dev

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEBIAN_PACKAGES=(ffmpeg espeak-ng lame)
# Only the tests need these (a real broker, a real stream server, a real PostgreSQL,
# LibreOffice to open the DOCX and XLSX reports, and Chromium for the browser tests: about a minute
# to install).
TEST_DEBIAN_PACKAGES=(mosquitto icecast2 postgresql libreoffice-writer-nogui libreoffice-calc-nogui chromium)

say() { printf '\033[1m[loa]\033[0m %s\n' "$*" >&2; }

ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    case "$pkg" in
      ffmpeg) command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg) ;;
      mosquitto) [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto) ;;
      postgresql) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql) ;;
      libreoffice-writer-nogui) command -v soffice >/dev/null || missing+=("$pkg") ;;
      libreoffice-calc-nogui) dpkg -s libreoffice-calc-nogui >/dev/null 2>&1 || missing+=("$pkg") ;;
      chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;  # Playwright's executable_path
      *) command -v "$pkg" >/dev/null || missing+=("$pkg") ;;
    esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local cmd="apt-get install -y ${missing[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive $cmd -qq >/dev/null; }; then
      say "could not install ${missing[*]}; run: $cmd"
      return 1
    fi
  else
    say "Loa needs ${missing[*]}. Install them, then run this again:"
    say "  sudo apt-get update && sudo $cmd"
    return 1
  fi
}

ensure_venv() {
  local extras="${1:-}" spec="." stamp
  [ -n "$extras" ] && spec=".[${extras}]"
  local python="${PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "Loa needs Python 3.11 or newer (found: $("$python" --version 2>&1))"
    return 1
  fi
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    say "creating .venv"
    if ! "$python" -m venv "$ROOT/.venv"; then
      say "python3 cannot create a virtual environment; run: apt-get install -y python3-venv"
      return 1
    fi
  fi
  stamp="$ROOT/.venv/.loa-installed"
  local want
  want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-${extras}"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing Loa${extras:+ with $extras extras} into .venv"
    "$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT/$spec"
    echo "$want" >"$stamp"
  fi
}

bootstrap() {
  ensure_debian_packages "${DEBIAN_PACKAGES[@]}" && ensure_venv "${1:-}"
}
