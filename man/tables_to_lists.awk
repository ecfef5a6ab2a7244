# Rewrites a Markdown document for go-md2man: each table row becomes a list
# item ("- KEY (type: ...; default: ...): meaning"), since wide tables do not fit
# a terminal's man page; the document's own title (the first "# " line) is
# dropped, the man page has its own NAME.
BEGIN { in_table = 0; dropped_title = 0 }
function trim(text) { gsub(/^[ \t]+|[ \t]+$/, "", text); return text }
function cells(line, out,    n, i) {
  sub(/^[ \t]*\|/, "", line); sub(/\|[ \t]*$/, "", line)
  n = split(line, out, "|")
  for (i = 1; i <= n; i++) out[i] = trim(out[i])
  return n
}
!dropped_title && /^# / { dropped_title = 1; next }
/^[ \t]*\|/ {
  if (!in_table) { columns = cells($0, header); in_table = 1; next }
  if ($0 ~ /^[ \t]*\|[ \t]*:?-+/) next
  n = cells($0, row)
  item = "- " row[1]
  if (n > 2) {
    item = item " ("
    for (i = 2; i < n; i++) item = item (i > 2 ? "; " : "") header[i] ": " row[i]
    item = item ")"
  }
  print item ": " row[n]
  next
}
{ if (in_table) print ""; in_table = 0; print }
