# Sourced by the compatibility scripts: reads their two arguments, a corpus
# checkout and optionally the gitplane binary (default
# target/release/gitplane, built when missing), into $checkout and
# $gitplane, and prints the checkout's commit.
checkout=${1:?usage: $0 CHECKOUT [GITPLANE]}
gitplane=${2:-target/release/gitplane}
if [ ! -x "$gitplane" ]; then
    cargo build --release --bin gitplane
fi
echo "corpus at $(git -C "$checkout" rev-parse --short HEAD 2>/dev/null || echo '(not a git checkout)')"
