# Sourced by book.sh and test.sh. Jupyter Book's execution cache keys on a notebook's code only:
# it does not see LCBOOK_PROFILE or changes to the lcbook package and the stored references.
# Clear it whenever any of those (or the results store the chapters read; not data/results/custom,
# which they do not) differ from what the cached outputs were made with.
want_key=$( { echo "profile=${LCBOOK_PROFILE:-quick}"; find lcbook data/references data/results requirements.txt \
  \( -path data/results/custom -o -path data/results/cache \) -prune -o -type f \
  \( -name '*.py' -o -name '*.pt' -o -name '*.json' -o -name '*.txt' \) -print0 | sort -z | xargs -0 sha256sum; } \
  | sha256sum | cut -d' ' -f1)
if [ -d _build/.jupyter_cache ] && [ "$(cat _build/.lcbook_cache_key 2>/dev/null)" != "$want_key" ]; then
  echo "== profile or package changed since the last build: clearing the notebook execution cache"
  rm -rf _build/.jupyter_cache
fi
mkdir -p _build && echo "$want_key" > _build/.lcbook_cache_key
