"""The raw-record rules of ``sparkify.records``, as Redshift SQL over landed raw lines.

Raw files COPYed straight from S3 land one line per row (``raw_lines``: file id, physical
line number, text). The statements below turn them into the same staged rows and the same
reject reasons as the Python parser, set-based, inside the warehouse:

1. ``records_sql``: the records of each file. Event files: every line that is not blank
   (after trimming the whitespace Python's ``bytes.strip`` trims, and a byte-order mark on
   line 1). Song files: the whole file as one document when it is valid JSON, else one record
   per line when every line is an object (JSON lines), else the whole file as one document.
2. ``check_sql``: per record, the reason it is refused (NULL when it is not), in the order
   ``records.convert_record`` checks (record, then each field in declared order), and the
   typed staging columns, derived columns included.
3. ``unknown_fields_sql``: per file, the keys of accepted records that no field declares,
   counted (``etl_runs.unknown_fields``, as the parser counts them).

The SQL is generated from the field tables in ``records.FIELDS``, so a field is declared
once. Constants are rendered with ``CHR`` (no data or setting is pasted into the text).
Where Redshift cannot say what Python says (the detail of a JSON syntax error, Python's
``repr`` of odd strings, ``casefold`` beyond ``LOWER``), docs/redshift.md lists the
difference.
"""

from __future__ import annotations

from sparkify.records import (
    _SHORTCUTS,
    FIELDS,
    INT64,
    KNOWN_KEYS,
    MATCH_KEYS,
    MAX_RAW_CHARS,
    Field,
    _integer,
    _number,
    _text,
    _user_id,
)
from sparkify.staging import KIND_TABLE, table_columns

# What bytes.strip() removes: space, \t, \n, \v, \f, \r.
SPACE = "(' ' || CHR(9) || CHR(10) || CHR(11) || CHR(12) || CHR(13))"
NUL_ESCAPE = "(CHR(92) || 'u0000')"  # the six characters \u0000 in a raw line
INTEGER_TEXT = "'^-?[0-9]{1,38}$'"
# A JSON number a DOUBLE PRECISION cast takes without overflow (exponent of two digits)
SAFE_NUMBER = "'^-?[0-9]{1,250}([.][0-9]+)?([eE][-+]?[0-9]{1,2})?$'"
STRING_INTEGER = "'^[[:space:]]*[-+]?[0-9]{1,38}[[:space:]]*$'"
STRING_NUMBER = (
    "'^[[:space:]]*[-+]?([0-9]{1,250}[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]{1,2})?[[:space:]]*$'"
)
STRING_NOT_FINITE = "'^[[:space:]]*[-+]?(inf|infinity|nan)[[:space:]]*$'"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _repr(value: str) -> str:
    """Python's repr of a short string, for the plain strings repr leaves as they are."""
    quote = "''''"
    return (
        f"{quote} || CASE WHEN LENGTH({value}) > 40 THEN LEFT({value}, 40) || '...' "
        f"ELSE {value} END || {quote}"
    )


def _range(spec: Field) -> tuple[int, int] | None:
    """The [low, high] of a ranged integer field (records._ranged), from its converter."""
    shortcut = _SHORTCUTS.get(spec.convert)
    if shortcut and shortcut[0] is int and spec.convert is not _integer:
        return int(shortcut[1]), int(shortcut[2])  # type: ignore[arg-type]
    return None


# Each field is read once from the parsed record into three columns named after its staging
# column: its JSON type (t_), its text when a string (s_), its JSON text when a number (n_).
# Integer fields then get their DECIMAL(38, 0) value (i_), number fields their double (d_).
def _read_field(spec: Field) -> list[str]:
    value, c = f'rec."{spec.key}"', spec.column
    return [
        f"JSON_TYPEOF({value}) AS t_{c}",
        f"CASE WHEN JSON_TYPEOF({value}) = 'string' THEN CAST({value} AS VARCHAR(65535)) "
        f"END AS s_{c}",
        f"CASE WHEN JSON_TYPEOF({value}) = 'number' THEN JSON_SERIALIZE({value}) END AS n_{c}",
    ]


def _convert_field(spec: Field) -> list[str]:
    c = spec.column
    passed = [f"t_{c}", f"s_{c}", f"n_{c}"]
    if spec.convert is _text:
        return passed
    if spec.convert is _number:
        return [
            *passed,
            f"CASE WHEN n_{c} ~ {SAFE_NUMBER} THEN CAST(n_{c} AS DOUBLE PRECISION) "
            f"WHEN s_{c} ~ {STRING_NUMBER} "
            f"THEN CAST(BTRIM(s_{c}, {SPACE}) AS DOUBLE PRECISION) END AS d_{c}",
        ]
    double = f"CAST(n_{c} AS DOUBLE PRECISION)"
    return [
        *passed,
        f"CASE WHEN n_{c} ~ {INTEGER_TEXT} THEN CAST(n_{c} AS DECIMAL(38, 0)) "
        f"WHEN n_{c} ~ {SAFE_NUMBER} AND {double} = FLOOR({double}) AND ABS({double}) < 1e38 "
        f"THEN CAST({double} AS DECIMAL(38, 0)) "
        f"WHEN s_{c} ~ {STRING_INTEGER} THEN CAST(BTRIM(s_{c}, {SPACE}) AS DECIMAL(38, 0)) "
        f"END AS i_{c}",
    ]


def _text_reason(spec: Field) -> list[str]:
    c, got = spec.column, _quoted(f"field '{spec.key}': expected text, got ")
    whens = [f"WHEN t_{c} IN ('boolean', 'object', 'array') THEN {got} || t_{c}"]
    if spec.max_bytes:  # records.within_width: the width counts UTF-8 bytes
        size = f"OCTET_LENGTH({field_value(spec)})"
        longer = _quoted(f"field '{spec.key}': text longer than {spec.max_bytes} bytes (")
        whens.append(
            f"WHEN {size} > {spec.max_bytes} "
            f"THEN {longer} || CAST({size} AS VARCHAR(20)) || ' bytes)'"
        )
    return whens


def _integer_reason(spec: Field) -> list[str]:
    c, prefix = spec.column, f"field '{spec.key}': "
    got = _quoted(prefix + "expected an integer, got ")
    whens = []
    if spec.convert is _user_id:  # logged-out visitors: "userId": ""
        whens.append(f"WHEN s_{c} = '' THEN NULL")
    whens += [
        f"WHEN t_{c} = 'boolean' THEN {_quoted(prefix + 'expected an integer, got boolean')}",
        f"WHEN t_{c} IN ('object', 'array') THEN {got} || t_{c}",
        f"WHEN NOT s_{c} ~ {STRING_INTEGER} THEN {got} || {_repr(f's_{c}')}",
        f"WHEN i_{c} IS NULL AND NOT n_{c} ~ '^-?[0-9]+$' THEN {got} || n_{c}",
        f"WHEN i_{c} IS NULL OR ABS(i_{c}) > {INT64} "
        f"THEN {_quoted(prefix + 'integer out of range')}",
    ]
    bounds = _range(spec)
    if bounds:
        low, high = bounds
        whens.append(
            f"WHEN i_{c} NOT BETWEEN {low} AND {high} "
            f"THEN {_quoted(f'{prefix}out of range [{low}, {high}]: ')} "
            f"|| CAST(i_{c} AS VARCHAR(40))"
        )
    return whens


def _number_reason(spec: Field) -> list[str]:
    c, prefix = spec.column, f"field '{spec.key}': "
    finite = _quoted(prefix + "expected a finite number")
    exponent = "'^[[:space:]]*[-+]?[0-9.]+[eE][-+]?[0-9]+[[:space:]]*$'"
    return [
        f"WHEN t_{c} = 'boolean' THEN {_quoted(prefix + 'expected a number, got boolean')}",
        f"WHEN t_{c} IN ('object', 'array') "
        f"THEN {_quoted(prefix + 'expected a number, got ')} || t_{c}",
        f"WHEN LOWER(s_{c}) ~ {STRING_NOT_FINITE} THEN {finite}",
        f"WHEN NOT s_{c} ~ {STRING_NUMBER} AND NOT s_{c} ~ {exponent} "
        f"THEN {_quoted(prefix + 'expected a number, got ')} || {_repr(f's_{c}')}",
        f"WHEN d_{c} IS NULL THEN {finite}",  # an exponent too large for a double
    ]


def field_reason(spec: Field) -> str:
    """Why the field refuses the record, or NULL (records.convert_record, one field)."""
    c = spec.column
    missing = "CAST(NULL AS VARCHAR)"
    if spec.required:
        missing = _quoted(f"missing required field '{spec.key}'")
    if spec.convert is _text:
        reasons = _text_reason(spec)
    elif spec.convert is _number:
        reasons = _number_reason(spec)
    else:
        reasons = _integer_reason(spec)
    whens = [f"WHEN t_{c} IS NULL OR t_{c} = 'null' THEN {missing}", *reasons]
    return "CASE " + "\n                    ".join(whens) + " END"


def field_value(spec: Field) -> str:
    """The converted value of a field whose reason is NULL."""
    c = spec.column
    if spec.convert is _text:
        return f"COALESCE(s_{c}, n_{c})"
    if spec.convert is _number:
        return f"d_{c}"
    column_type = "INTEGER" if spec.sql_type == "INTEGER" else "BIGINT"
    return f"CASE WHEN ABS(i_{c}) <= {INT64} THEN CAST(i_{c} AS {column_type}) END"


def _record_reason(kind: str) -> str:
    """records.convert_record: an object, then each field in order."""
    not_object = (
        "'expected a JSON object, got ' || CASE rec_type "
        "WHEN 'string' THEN 'str' WHEN 'null' THEN 'NoneType' "
        "WHEN 'number' THEN CASE WHEN doc ~ '^-?[0-9]+$' THEN 'int' ELSE 'float' END "
        "ELSE rec_type END"
    )
    fields = ",\n               ".join(field_reason(spec) for spec in FIELDS[kind])
    return (
        f"CASE WHEN POSITION({NUL_ESCAPE} IN doc) > 0 THEN 'text contains a NUL character'\n"
        "            WHEN rec_type IS NULL THEN 'invalid JSON'\n"
        f"            WHEN rec_type <> 'object' THEN {not_object}\n"
        f"            ELSE COALESCE({fields}) END"
    )


# Parsed once into a table: inside one statement, a planner may copy the parse into every
# expression that reads the record (PostgreSQL does, when it flattens subqueries).
PARSE_SQL = (
    "CREATE TEMPORARY TABLE raw_parsed AS\n"
    "SELECT file_id, line_no, doc,\n"
    f"       CASE WHEN POSITION({NUL_ESCAPE} IN doc) = 0 AND CAN_JSON_PARSE(doc)\n"
    "            THEN JSON_PARSE(doc) END AS rec\n"
    "FROM raw_records"
)


def check_sql(kind: str) -> str:
    """``raw_checked``: each parsed record of ``raw_parsed``, its reason and its typed
    columns, in three levels: read each field, convert it, then decide."""
    fields = FIELDS[kind]
    values = [f'{field_value(spec)} AS "{spec.column}"' for spec in fields]
    for source, key in MATCH_KEYS[kind]:
        spec = next(f for f in fields if f.column == source)
        values.append(f'LOWER(BTRIM({field_value(spec)}, {SPACE})) AS "{key}"')
    if kind == "events":
        ts = next(f for f in fields if f.column == "ts")
        values.append(
            f"TIMESTAMP 'epoch' + {field_value(ts)} * INTERVAL '1 millisecond' AS start_time"
        )
    raw = (
        f"CASE WHEN LENGTH(doc) > {MAX_RAW_CHARS} "
        f"THEN LEFT(doc, {MAX_RAW_CHARS}) || '...[truncated]' ELSE doc END"
    )
    read = ",\n                     ".join(x for spec in fields for x in _read_field(spec))
    converted = ",\n              ".join(x for spec in fields for x in _convert_field(spec))
    selected = ",\n       ".join(values)
    return (
        "CREATE TEMPORARY TABLE raw_checked AS\n"
        f'SELECT file_id, line_no, {raw} AS "raw",\n'
        f"       {_record_reason(kind)} AS reason,\n"
        f"       {selected}\n"
        "FROM (SELECT file_id, line_no, doc, rec_type,\n"
        f"              {converted}\n"
        "      FROM (SELECT file_id, line_no, doc, JSON_TYPEOF(rec) AS rec_type,\n"
        f"                   {read}\n"
        "            FROM raw_parsed) fields) converted"
    )


def _trimmed_lines() -> str:
    """Each landed line without surrounding whitespace; line 1 also without a byte-order
    mark (Redshift's CHR stops at ASCII, so U+FEFF is decoded from a JSON escape)."""
    return (
        "SELECT file_id, line_no, line, BTRIM(CASE WHEN line_no = 1 "
        "AND LEFT(line, 1) = JSON_EXTRACT_PATH_TEXT('{\"b\": \"' || CHR(92) || 'ufeff\"}', 'b') "
        f"THEN SUBSTRING(line, 2) ELSE line END, {SPACE}) AS trimmed FROM raw_lines"
    )


def records_sql(kind: str) -> str:
    """``raw_records``: the records in the landed lines of ``kind`` (records.parse_*)."""
    if kind == "events":
        return (
            "INSERT INTO raw_records (file_id, line_no, doc)\n"
            f"SELECT file_id, line_no, trimmed FROM ({_trimmed_lines()}) lines\n"
            "WHERE trimmed <> ''"
        )
    # A song file is one document (possibly pretty-printed) or JSON lines. Files too long to
    # assemble in one VARCHAR (64 KB) are read as JSON lines.
    return (
        "INSERT INTO raw_records (file_id, line_no, doc)\n"
        f"WITH lines AS ({_trimmed_lines()}),\n"
        "files AS (\n"
        "    SELECT file_id,\n"
        "           SUM(CASE WHEN trimmed <> '' THEN 1 ELSE 0 END) AS records,\n"
        "           SUM(CASE WHEN trimmed <> '' AND NOT (LEFT(trimmed, 1) = '{' AND "
        "RIGHT(trimmed, 1) = '}') THEN 1 ELSE 0 END) AS not_objects,\n"
        "           SUM(OCTET_LENGTH(COALESCE(line, '')) + 1) AS size\n"
        "    FROM lines GROUP BY file_id),\n"
        "bodies AS (\n"
        "    SELECT l.file_id,\n"
        "           BTRIM(LISTAGG(COALESCE(l.trimmed, ''), CHR(10)) WITHIN GROUP (ORDER BY "
        f"l.line_no), {SPACE}) AS body\n"
        "    FROM lines l JOIN files f ON f.file_id = l.file_id\n"
        "    WHERE f.size <= 65535 GROUP BY l.file_id),\n"
        "documents AS (\n"
        "    SELECT b.file_id, b.body FROM bodies b JOIN files f ON f.file_id = b.file_id\n"
        "    WHERE b.body <> ''\n"
        "      AND (CAN_JSON_PARSE(b.body) OR f.records < 2 OR f.not_objects > 0))\n"
        "SELECT file_id, 1, body FROM documents\n"
        "UNION ALL\n"
        "SELECT l.file_id, l.line_no, l.trimmed FROM lines l\n"
        "WHERE l.trimmed <> '' AND l.file_id NOT IN (SELECT file_id FROM documents)"
    )


def staged_insert_sql(kind: str) -> str:
    """The accepted records into the kind's checked rows (loaded into staging later)."""
    columns = ", ".join(f'"{c}"' for c in table_columns(KIND_TABLE[kind]))
    return (
        f"INSERT INTO checked_{kind} ({columns})\n"
        f"SELECT {columns} FROM raw_checked WHERE reason IS NULL"
    )


def unknown_fields_sql(kind: str) -> str:
    """Per file, each key of an accepted record that no field of ``kind`` declares, and how
    many accepted records have it: PartiQL's UNPIVOT turns each SUPER object into its
    (value, key) pairs, on every slice (the parser counts the same keys, records.stage_line)."""
    known = ", ".join(_quoted(key) for key in sorted(KNOWN_KEYS[kind]))
    return (
        "SELECT c.file_id, field_name, COUNT(*)\n"
        "FROM raw_checked c, raw_parsed p, UNPIVOT p.rec AS field_value AT field_name\n"
        "WHERE p.file_id = c.file_id AND p.line_no = c.line_no AND c.reason IS NULL\n"
        f"  AND field_name NOT IN ({known})\n"
        "GROUP BY c.file_id, field_name"
    )
