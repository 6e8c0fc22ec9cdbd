#!/bin/sh
# Install hearth from this checkout on FreeBSD or Linux. deploy/README.md lists
# every file it installs; run with --help for the options.
set -eu

usage()
{
	cat <<'EOF'
usage: deploy/install.sh [--os freebsd|linux] [--no-venv] [--prefix DIR] [--destdir DIR]

Installs hearth from this checkout:
  PREFIX/lib/hearth        the code, rc.d scripts and a venv with its dependencies
  PREFIX/bin/hearth        the hearth command (reads the config below by default)
  config                   FreeBSD: PREFIX/etc/hearth/hearth.toml, Linux: /etc/hearth/hearth.toml
                           (written from hearth.toml.example only when missing)
  FreeBSD                  rc.d scripts in PREFIX/etc/rc.d, newsyslog.conf.d entry
  Linux                    systemd unit /etc/systemd/system/hearth.service,
                           logrotate alternative in PREFIX/share/hearth/
  data directory           FreeBSD: /var/db/hearth, Linux: /var/lib/hearth (owned by hearth)

options:
  --os freebsd|linux   target system (default: this one, from uname)
  --prefix DIR         installation prefix (default /usr/local, or $PREFIX)
  --destdir DIR        stage everything under DIR (default $DESTDIR): no user is created
                       and no venv is built; both are printed as next steps
  --no-venv            do not build the venv (pip needs the network and some minutes)
  -h, --help           this text
EOF
}

die()
{
	echo "install.sh: $*" >&2
	exit 2
}

os=
prefix="${PREFIX:-/usr/local}"
destdir="${DESTDIR:-}"
build_venv=yes
while [ $# -gt 0 ]; do
	case "$1" in
	--os) [ $# -ge 2 ] || die "--os needs freebsd or linux"; os="$2"; shift 2 ;;
	--os=*) os="${1#--os=}"; shift ;;
	--prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$2"; shift 2 ;;
	--prefix=*) prefix="${1#--prefix=}"; shift ;;
	--destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; destdir="$2"; shift 2 ;;
	--destdir=*) destdir="${1#--destdir=}"; shift ;;
	--no-venv) build_venv=no; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument: $1" ;;
	esac
done

if [ -z "$os" ]; then
	case "$(uname -s)" in
	FreeBSD) os=freebsd ;;
	Linux) os=linux ;;
	*) die "unknown system $(uname -s): pass --os freebsd or --os linux" ;;
	esac
fi
case "$os" in
freebsd|linux) ;;
*) die "--os: expected freebsd or linux, got '$os'" ;;
esac
case "$prefix" in
/*) ;;
*) die "--prefix must be an absolute path, got '$prefix'" ;;
esac
# A venv holds absolute paths: one built under DESTDIR would point into it.
[ -n "$destdir" ] && build_venv=no

checkout="$(cd "$(dirname "$0")/.." && pwd)"
[ -f "$checkout/pyproject.toml" ] && [ -d "$checkout/services" ] || die "run me from a hearth checkout"

libdir="$prefix/lib/hearth"
venv="$libdir/venv"
bindir="$prefix/bin"
if [ "$os" = freebsd ]; then
	confdir="$prefix/etc/hearth"
	datadir=/var/db/hearth
else
	confdir=/etc/hearth
	datadir=/var/lib/hearth
fi
config="$confdir/hearth.toml"

# fill TEMPLATE DEST MODE: copy with this installation's paths in place of the
# FreeBSD defaults the shipped files carry and of the @…@ placeholders.
fill()
{
	mkdir -p "$(dirname "$2")"
	sed -e "s|@CONFIG@|$config|g" -e "s|@BINDIR@|$bindir|g" -e "s|@VENV@|$venv|g" \
	    -e "s|/usr/local/bin/hearth|$bindir/hearth|g" \
	    -e "s|/usr/local/bin/python3|$venv/bin/python|g" \
	    -e "s|/usr/local/etc/hearth.toml|$config|g" \
	    -e "s|/usr/local/etc/hearth/relay.toml|$confdir/relay.toml|g" \
	    -e "s|/var/db/hearth|$datadir|g" \
	    "$1" > "$2"
	chmod "$3" "$2"
}

# copy_tree DIR: the checkout's DIR into PREFIX/lib/hearth, without bytecode.
copy_tree()
{
	(cd "$checkout" && find "$1" -name __pycache__ -prune -o -type f -print) | while IFS= read -r file; do
		mkdir -p "$destdir$libdir/$(dirname "$file")"
		cp -p "$checkout/$file" "$destdir$libdir/$file"
	done
}

echo "installing hearth for $os into ${destdir:+$destdir}$prefix"
mkdir -p "$destdir$libdir"
copy_tree services
copy_tree rc.d
cp -p "$checkout/pyproject.toml" "$checkout/README.md" "$destdir$libdir/"
fill "$checkout/deploy/bin/hearth" "$destdir$bindir/hearth" 0755

# The example is always replaced (it documents this version); hearth.toml never is.
mkdir -p "$destdir$confdir"
cp "$checkout/deploy/hearth.toml.example" "$destdir$confdir/hearth.toml.example"
chmod 0644 "$destdir$confdir/hearth.toml.example"
if [ -e "$destdir$config" ]; then
	echo "kept $config (compare it with hearth.toml.example next to it)"
else
	# This machine's data directory, and every daemon run as the hearth user.
	awk -v data="$datadir" '
		/^\[/ { section = $0 }
		section == "" && /^data_dir = / { print "data_dir = \"" data "\""; next }
		section == "[supervisor]" && /^user = / { print "user = \"hearth\""; next }
		{ print }
	' "$checkout/deploy/hearth.toml.example" > "$destdir$config.new"
	chmod 0640 "$destdir$config.new"
	mv "$destdir$config.new" "$destdir$config"
fi

if [ "$os" = freebsd ]; then
	for script in "$checkout"/rc.d/hearth_*; do
		fill "$script" "$destdir$prefix/etc/rc.d/$(basename "$script")" 0755
	done
	fill "$checkout/deploy/newsyslog.conf" "$destdir$prefix/etc/newsyslog.conf.d/hearth.conf" 0644
else
	fill "$checkout/deploy/systemd/hearth.service" "$destdir/etc/systemd/system/hearth.service" 0644
	# Wrappers run as hearth under the unit, so a new log must be theirs to write.
	fill "$checkout/deploy/logrotate.conf" "$destdir$prefix/share/hearth/logrotate.conf" 0644
	sed -e "s|create 0640 root hearth|create 0640 hearth hearth|" "$destdir$prefix/share/hearth/logrotate.conf" \
		> "$destdir$prefix/share/hearth/logrotate.conf.new"
	mv "$destdir$prefix/share/hearth/logrotate.conf.new" "$destdir$prefix/share/hearth/logrotate.conf"
	chmod 0644 "$destdir$prefix/share/hearth/logrotate.conf"
fi
mkdir -p "$destdir$datadir"
chmod 0750 "$destdir$datadir"

if [ "$build_venv" = yes ]; then
	echo "building $venv (pip install; this takes a few minutes)"
	python3 -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet --upgrade pip
	"$venv/bin/python" -m pip install --quiet -e "$libdir"
fi

if [ "$os" = freebsd ]; then
	create_user="pw groupadd hearth && pw useradd hearth -g hearth -d $datadir -s /usr/sbin/nologin -c 'hearth home server'"
else
	create_user="useradd --system --user-group --home-dir $datadir --shell /usr/sbin/nologin hearth"
fi
user_ready=no
if [ -z "$destdir" ] && [ "$(id -u)" = 0 ]; then
	id hearth >/dev/null 2>&1 || sh -c "$create_user"
	chown hearth:hearth "$datadir"
	chown root:hearth "$config"
	user_ready=yes
fi

echo
echo "next steps:"
if [ "$build_venv" = no ]; then
	echo "  python3 -m venv $venv && $venv/bin/python -m pip install -e $libdir"
fi
if [ "$user_ready" = no ]; then
	echo "  $create_user"
	echo "  chown hearth:hearth $datadir && chown root:hearth $config"
fi
echo "  edit $config ([front] listen, trusted_proxies, tls_cert …)"
if [ "$os" = freebsd ]; then
	echo "  su -m hearth -c 'HEARTH_ADMIN_PASSWORD=… $bindir/hearth init'   # or note the password it prints"
	# Every daemon but hearth_rotate (newsyslog rotates the logs here),
	# hearth_relay (it belongs on the public server the agent dials out to) and
	# hearth_litestream (enable it once hearth.toml sets [backup] replica).
	enable=
	for script in "$checkout"/rc.d/hearth_*; do
		name="$(basename "$script")"
		case "$name" in
		hearth_rotate|hearth_relay|hearth_litestream) ;;
		*) enable="$enable ${name}_enable=YES" ;;
		esac
	done
	echo "  sysrc$enable"
	echo "  service hearth_front start   # starts what it REQUIREs first; or reboot"
else
	echo "  runuser -u hearth -- env HEARTH_ADMIN_PASSWORD=… $bindir/hearth init   # or note the password it prints"
	echo "  systemctl daemon-reload && systemctl enable --now hearth"
fi
