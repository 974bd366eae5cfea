# Node side of `preflight provision` (src/preflight/provision): POSIX sh, coreutils and tar.
# Run as: sh -c "$THIS" provision VERB ARGS..., data (an archive, a file) on stdin.
# Every change is made beside the live copy and switched in with one rename, so a kill at
# any point leaves the old thing or the new thing, never half of one; our partial
# leftovers carry names we own (.part-*) and are cleared by the next run.
set -eu
umask 022

die() { echo "$*" >&2; exit 3; }

lock() {  # lock DIR TOKEN: one provision at a time on this node
  mkdir -p "$(dirname "$1")"
  if mkdir "$1" 2>/dev/null; then echo "$2" > "$1/owner"; return 0; fi
  owner=$(cat "$1/owner" 2>/dev/null || echo unknown)
  [ "$owner" = "$2" ] && return 0
  echo "locked by $owner" >&2; exit 75
}

unlock() {  # unlock DIR TOKEN
  [ "$(cat "$1/owner" 2>/dev/null)" = "$2" ] && rm -rf "$1"
  return 0
}

breaklock() {  # breaklock DIR OWNER: take over a lock whose holder is known dead
  [ "$(cat "$1/owner" 2>/dev/null)" = "$2" ] && rm -rf "$1"
  return 0
}

receive() {  # receive FILE SHA256: stdin to FILE, whole and verified, or nothing
  part="$1.part-$$"
  mkdir -p "$(dirname "$1")"
  cat > "$part" || { rm -f "$part"; die "writing $1 failed (disk full?); nothing partial is kept"; }
  got=$(sha256sum "$part" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then rm -f "$part"; die "received $(wc -c < "$part" 2>/dev/null || echo 0) bytes with sha256 $got, expected $2"; fi
  mv -f "$part" "$1"
}

unpack() {  # unpack ARCHIVE DIR COMPRESSION
  case "$3" in
    zstd) zstd -dcq "$1" | tar -C "$2" -xf - ;;
    *) tar -C "$2" -xzf "$1" ;;
  esac
}

switch_link() {  # switch_link LINK TARGET: LINK -> TARGET with one rename
  tmp="$(dirname "$1")/.$(basename "$1").link-$$"
  ln -sfn "$2" "$tmp"
  if [ -d "$1" ] && [ ! -L "$1" ]; then
    # a plain folder from before provision: kept beside, as the previous version
    mv "$1" "$(dirname "$1")/.$(basename "$1")-previous-$(date +%Y%m%d%H%M%S)"
  fi
  mv -Tf "$tmp" "$1"
}

env_install() {  # env_install ENVS NAME VERSION DIGEST SHA256 COMPRESSION ARCHIVE_CACHE
  envs="$1"; final="$1/$3"; archive="$7/$4.$6"
  mkdir -p "$envs"
  for old in "$envs"/.$2-*.part-*; do [ -e "$old" ] && rm -rf "$old"; done
  if [ ! -f "$final/conda-meta/.preflight-complete" ]; then
    [ -e "$final" ] && die "$final exists without its marker; not touching it"
    receive "$archive" "$5"
    part="$final.part-$$"
    mkdir "$part"
    unpack "$archive" "$part" "$6" || { rm -rf "$part"; die "unpacking into $part failed (disk full?); the env in use is untouched"; }
    [ -d "$part/conda-meta" ] || { rm -rf "$part"; die "the archive holds no conda-meta"; }
    if [ -f "$part/.preflight-pip/requirements.lock" ]; then
      pip_install "$part" "$envs/$2" || { rm -rf "$part"; die "pip could not install the locked wheels (above); the env in use is untouched"; }
    fi
    sync
    echo "$4" > "$part/conda-meta/.preflight-complete"
    sync
    mv "$part" "$final"
  else
    cat > /dev/null
  fi
  switch_link "$envs/$2" "$3"
}

pip_install() {  # pip_install PART TARGET: the archive's locked wheels, offline, into PART
  # no index, no config file, no user site: exactly the wheels the controller hashed
  PIP_CONFIG_FILE=/dev/null PYTHONNOUSERSITE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$1/bin/python" -m pip install --quiet --no-index --find-links "$1/.preflight-pip" \
    --require-hashes --no-deps --no-warn-script-location \
    -r "$1/.preflight-pip/requirements.lock" >&2 || return 1
  # pip wrote script shebangs for the folder it ran in; jobs run the env as TARGET (the
  # path conda's own files name), so they are rewritten, with their RECORD rows
  "$1/bin/python" - "$1" "$2" <<'PYEOF' || return 1
import base64, csv, glob, hashlib, io, os, sys
part, target = sys.argv[1].encode(), sys.argv[2].encode()
for record in glob.glob(sys.argv[1] + "/lib/python*/site-packages/*.dist-info/RECORD"):
    info = os.path.dirname(record)
    try:
        installer = open(os.path.join(info, "INSTALLER")).read().strip()
    except OSError:
        continue
    if installer != "pip":
        continue
    rows, changed = list(csv.reader(open(record, newline=""))), False
    for row in rows:
        full = os.path.normpath(os.path.join(os.path.dirname(info), row[0]))
        if not full.startswith(sys.argv[1] + "/bin/") or not os.path.isfile(full):
            continue
        data = open(full, "rb").read()
        head = data[:512]
        if part not in head:
            continue
        data = head.replace(part, target) + data[512:]
        with open(full, "wb") as stream:
            stream.write(data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        row[1:3] = ["sha256=" + digest.decode(), str(len(data))]
        changed = True
    if changed:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        open(record, "w").write(out.getvalue())
PYEOF
  rm -rf "$1/.preflight-pip"
}

env_prune() {  # env_prune ENVS NAME KEEP...: versioned envs other than KEEP go
  envs="$1"; name="$2"; shift 2
  for dir in "$envs"/.$name-*; do
    [ -d "$dir" ] || continue
    base=$(basename "$dir"); keep=no
    for k in "$@"; do [ "$base" = "$k" ] && keep=yes; done
    case "$base" in *-previous-*) keep=yes ;; esac
    [ "$keep" = yes ] || rm -rf "$dir"
  done
}

base_install() {  # base_install PREFIX SHA256: run the installer from stdin with -b -p
  prefix="$1"; marker="$(dirname "$prefix")/.$(basename "$prefix").preflight-installing"
  installer="$(dirname "$prefix")/.preflight-installer-$2.sh"
  receive "$installer" "$2"
  if [ -e "$prefix" ]; then
    # a partial base is moved aside, never deleted: it may hold someone's envs
    mv "$prefix" "$prefix.partial-$(date +%Y%m%d%H%M%S)-$$"
  fi
  : > "$marker"
  bash "$installer" -b -p "$prefix" >&2 || die "the installer failed (exit $?)"
  rm -f "$marker"  # the verified installer stays: other nodes copy it from here (--prune)
}

put() {  # put FILE MODE EXPECTED_SHA256|-: stdin becomes FILE, the old one kept as a backup
  file="$1"; case "$file" in "~/"*) file="$HOME/${file#\~/}" ;; esac
  mkdir -p "$(dirname "$file")"
  if [ -e "$file" ]; then
    if [ "$3" != "-" ] && [ "$(sha256sum "$file" | cut -d' ' -f1)" != "$3" ]; then
      die "$file changed since it was read; run provision again"
    fi
    cp -p "$file" "$file.preflight-$(date +%Y%m%d%H%M%S).bak"
  fi
  cat > "$file.part-$$"
  chmod "$2" "$file.part-$$"
  mv -f "$file.part-$$" "$file"
}

remove() {  # remove FILE EXPECTED_SHA256: a file we wrote goes, unless changed since
  [ -e "$1" ] || return 0
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ] || die "$1 changed since it was written; left as it is"
  rm -f "$1"
}

sshd_test() {  # sshd_test: the config sshd would read now is valid
  sshd=$(command -v sshd || echo /usr/sbin/sshd)
  "$sshd" -t -f /etc/ssh/sshd_config >&2 || die "sshd -t rejects the new configuration"
}

listeners() {  # listeners PID: the socket inodes PID holds (sshd's listener: its ports)
  ls -l /proc/"$1"/fd 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p' | sort | tr '\n' ' '
}

sshd_reload() {  # sshd_reload: SIGHUP the listener (open sessions stay), never a restart
  sshd=$(command -v sshd || echo /usr/sbin/sshd)
  pidfile=$("$sshd" -T -C user=root,host=localhost,addr=127.0.0.1 2>/dev/null | awk '$1=="pidfile"{print $2}')
  pid=$(cat "${pidfile:-/run/sshd.pid}" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = sshd ]; then
    # sshd re-executes itself on SIGHUP and binds new sockets: until it has, a new
    # connection still meets the old configuration (and a login test would pass on it)
    before=$(listeners "$pid")
    kill -HUP "$pid"
    tries=0
    while [ $tries -lt 100 ]; do
      now=$(listeners "$pid")
      if [ -n "$now" ] && [ "$now" != "$before" ]; then return 0; fi
      sleep 0.1; tries=$((tries + 1))
    done
    die "sshd (pid $pid) did not bind new listeners within 10 s of its SIGHUP"
  fi
  if [ -d /run/systemd/system ]; then
    systemctl reload ssh 2>/dev/null || systemctl reload sshd || die "systemctl reload of sshd failed"
    return 0
  fi
  die "cannot reload sshd: no live pid in ${pidfile:-/run/sshd.pid} and no systemd"
}

append() {  # append FILE MODE: stdin's lines that FILE lacks are added at its end
  file="$1"; case "$file" in "~/"*) file="$HOME/${file#\~/}" ;; esac
  mkdir -p "$(dirname "$file")"
  [ -e "$file" ] || { : > "$file"; chmod "$2" "$file"; }
  new="$file.part-$$"
  cp -p "$file" "$new"
  [ -s "$new" ] && [ "$(tail -c 1 "$new" | od -An -c | tr -d ' ')" != '\n' ] && echo >> "$new"
  while IFS= read -r line; do grep -qxF -- "$line" "$new" || printf '%s\n' "$line" >> "$new"; done
  cmp -s "$file" "$new" && { rm -f "$new"; return 0; }
  cp -p "$file" "$file.preflight-$(date +%Y%m%d%H%M%S).bak"
  mv -f "$new" "$file"
}

keygen() {  # keygen FILE: an ed25519 key for node-to-node logins, unless one is there
  file="$1"; case "$file" in "~/"*) file="$HOME/${file#\~/}" ;; esac
  mkdir -p "$(dirname "$file")"; chmod 700 "$(dirname "$file")"
  [ -e "$file" ] || ssh-keygen -q -t ed25519 -N '' -C "$(id -un)@$(hostname)" -f "$file"
  chmod 600 "$file"
}

release_prepare() {  # release_prepare WORKSPACE RELEASE: prints the folder to rsync into
  root="$(dirname "$1")/.$(basename "$1")-releases"  # and the live tree, for --link-dest
  mkdir -p "$root"
  for old in "$root"/*.part; do [ -e "$old" ] && rm -rf "$old"; done
  mkdir "$root/$2.part"
  printf '%s\n%s\n' "$root/$2.part" "$(readlink -f "$1" 2>/dev/null || true)"
}

release_switch() {  # release_switch WORKSPACE RELEASE: the synced release goes live
  root="$(dirname "$1")/.$(basename "$1")-releases"
  mv -T "$root/$2.part" "$root/$2"
  previous=$(readlink "$1" 2>/dev/null || true)
  switch_link "$1" "$(basename "$root")/$2"
  for dir in "$root"/*; do
    case "$dir" in "$root/$2"|*"/${previous##*/}") ;; *) rm -rf "$dir" ;; esac
  done
}

drop() {  # drop PATH DRY: print "KB PATH"; remove it unless DRY is yes
  [ -e "$1" ] || [ -L "$1" ] || return 0
  echo "$(du -sk "$1" 2>/dev/null | cut -f1) $1"
  [ "$2" = yes ] || rm -rf "$1"
}

older_than_previous() {  # older_than_previous DIR GLOB LIVE: paths to drop, one a line
  # newest first; the live one and the newest other one (the previous) stay
  kept=""
  for path in $(ls -dt "$1"/$2 2>/dev/null); do
    base=$(basename "$path")
    case "$base" in *.part-*|*.part) echo "$path"; continue ;; esac
    [ "$base" = "$3" ] && continue
    if [ -z "$kept" ]; then kept="$base"; continue; fi
    echo "$path"
  done
}

prune() {  # prune ENVS NAME WORKSPACE HELD DRY BASEDIR: env versions, code releases and held
  # env archives older than the previous ones, held installers; prints "KB PATH" for each
  envs="$1"; name="$2"; ws="$3"; held="$4"; dry="$5"
  live=$(readlink "$envs/$name" 2>/dev/null || true); live=${live##*/}
  gone=$(older_than_previous "$envs" ".$name-*" "$live")
  keep=""
  for dir in "$envs"/.$name-*; do  # the digests of the versions that stay
    [ -d "$dir" ] || continue
    case "
$gone
" in *"
$dir
"*) continue ;; esac
    base=$(basename "$dir"); rest=${base#.$name-}; keep="$keep ${rest%%-*}"
  done
  for path in $gone; do drop "$path" "$dry"; done
  for path in "$held"/*; do
    [ -e "$path" ] || continue
    case "$path" in *.part-*) drop "$path" "$dry"; continue ;; esac
    digest=$(basename "$path"); digest=${digest%%.*}
    case " $keep " in *" $digest "*) continue ;; esac
    drop "$path" "$dry"
  done
  root="$(dirname "$ws")/.$(basename "$ws")-releases"
  current=$(readlink "$ws" 2>/dev/null || true); current=${current##*/}
  for path in $(older_than_previous "$root" "*" "$current"); do drop "$path" "$dry"; done
  for path in "$6"/.preflight-installer-*.sh*; do drop "$path" "$dry"; done  # base is in
}

verb="$1"; shift
case "$verb" in
  lock) lock "$@" ;; unlock) unlock "$@" ;; breaklock) breaklock "$@" ;;
  env-install) env_install "$@" ;; env-prune) env_prune "$@" ;;
  base-install) base_install "$@" ;; put) put "$@" ;; append) append "$@" ;;
  keygen) keygen "$@" ;; remove) remove "$@" ;;
  sshd-test) sshd_test ;; sshd-reload) sshd_reload ;; prune) prune "$@" ;; release-prepare) release_prepare "$@" ;;
  release-switch) release_switch "$@" ;;
  *) die "unknown verb $verb" ;;
esac
