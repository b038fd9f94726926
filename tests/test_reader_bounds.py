"""Issue 17, attacks 4 and 6: the sheet readers' work is bounded by the cells actually present.

A 4.9 KB XLSX declaring ``<dimension ref="A1:XFD1048576"/>`` with one cell in row 1,048,576 used to
pad every gap row to 16,384 columns (MemoryError at 3 GB); one CSV row of 20,000 extra commas made
``build_table`` scan every row once per blank column (101 s instead of 1.6 s), and a 50 MB line of
commas took 3.3 GB. The readers run here in a child process under a 1 GiB address-space limit, with
a timeout that only catches hangs; the blank-column scan is checked by counting the cells it reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import pytest

from music_classifier.errors import InputError
from music_classifier.ingest.sheet_source import MAX_COLUMNS, build_table, column_letter, read_csv

HEADER = ["student", "song", "coarse_genre"]
LIMIT_BYTES = 1 << 30  # the child's address space: the old readers needed 3 GB and more
HANG_S = 120  # only catches a hang: the bounded readers need a few seconds
# The child's environment: this one (NUMBA_CACHE_DIR and the like), with one BLAS/OpenMP thread so
# that thread stacks do not eat into the address-space limit, and no colours or wrapping.
CHILD_ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1", "COLUMNS": "200"}

# The child reads one file with the library function and prints the table's shape as JSON, or the
# InputError's message; anything else (MemoryError, a crash) is a traceback and a non-zero exit.
CHILD = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    from music_classifier.errors import InputError
    from music_classifier.ingest import sheet_source
    try:
        table = getattr(sheet_source, sys.argv[1])(sys.argv[2])
    except InputError as exc:
        print(json.dumps({{"error": str(exc)}}))
    else:
        filled = [(i, row) for i, row in enumerate(table.rows) if any(row)]
        print(json.dumps({{"headers": table.headers, "n_rows": len(table.rows),
                          "filled": [[table.first_row_number + i, row] for i, row in filled[:5]]}}))
""").format(limit=LIMIT_BYTES)


def read_bounded(reader: str, path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, reader, str(path)], capture_output=True, text=True,
                          timeout=HANG_S, env=CHILD_ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


# --------------------------------------------------------------------------- XLSX


def _inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def crafted_xlsx(path, far_cell: str, far_value: str = "Zed", extra_rows: str = ""):
    """A workbook written by hand, as an attacker would: it declares the whole sheet as its
    dimension and holds the header row, ``extra_rows`` (XML) and one cell at ``far_cell``."""
    header = "".join(_inline(f"{column_letter(i)}1", h) for i, h in enumerate(HEADER))
    far_row = far_cell.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             '<dimension ref="A1:XFD1048576"/><sheetData>'
             f'<row r="1">{header}</row>{extra_rows}<row r="{far_row}">{_inline(far_cell, far_value)}</row>'
             '</sheetData></worksheet>')
    files = {
        "[Content_Types].xml":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '</Types>',
        "_rels/.rels":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Target="xl/workbook.xml" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
            '</Relationships>',
        "xl/workbook.xml":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="Songs" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels":
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Target="worksheets/sheet1.xml" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
            '</Relationships>',
        "xl/worksheets/sheet1.xml": sheet,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def test_crafted_xlsx_is_small_and_declares_the_whole_sheet(tmp_path):
    path = crafted_xlsx(tmp_path / "attack.xlsx", "XFD1048576")
    assert path.stat().st_size < 5000
    with zipfile.ZipFile(path) as archive:
        assert '<dimension ref="A1:XFD1048576"/>' in archive.read("xl/worksheets/sheet1.xml").decode()


def test_xlsx_declared_dimension_is_not_trusted(tmp_path):
    """The far cell in column A fits the column cap: the table holds it at its row number, without
    a padded cell for the declared 16,384 columns (the old reader: MemoryError)."""
    path = crafted_xlsx(tmp_path / "far.xlsx", "A1048576")
    result = read_bounded("read_xlsx", path)
    assert result["headers"] == HEADER
    assert result["n_rows"] == 1_048_575
    assert result["filled"] == [[1_048_576, ["Zed", "", ""]]]


def test_xlsx_cell_beyond_the_column_cap_is_one_line_naming_file_and_cap(tmp_path):
    path = crafted_xlsx(tmp_path / "corner.xlsx", "XFD1048576")
    message = read_bounded("read_xlsx", path)["error"]
    assert "\n" not in message
    assert message.startswith(f"{path}: row 1048576 has cells beyond column {column_letter(MAX_COLUMNS - 1)}")
    assert f"the cap is {MAX_COLUMNS} columns" in message


def test_xlsx_row_beyond_excels_last_row_is_one_line(tmp_path):
    """No dimension trusted, no padding, but a row number past Excel's limit would still make
    a gap of any length: refused."""
    path = crafted_xlsx(tmp_path / "beyond.xlsx", "A1048577")
    message = read_bounded("read_xlsx", path)["error"]
    assert message == f"{path}: row 1048577 is beyond row 1048576 (the cap, Excel's own limit)"


def test_xlsx_compressed_cells_beyond_the_cell_cap_are_one_line(tmp_path):
    """Rows of a value in the last allowed column compress to almost nothing: 6,000 of them ask
    for 6 million cells, past the cap of 5 million, from a file of a few kilobytes."""
    last = column_letter(MAX_COLUMNS - 1)
    rows = "".join(f'<row r="{r}"><c r="{last}{r}"><v>1</v></c></row>' for r in range(2, 6002))
    path = crafted_xlsx(tmp_path / "cells.xlsx", "A7000", extra_rows=rows)
    assert path.stat().st_size < 100_000
    message = read_bounded("read_xlsx", path)["error"]
    assert message.startswith(f"{path}: more than 5,000,000 cells up to row ")


def test_xlsx_reads_a_normal_sheet_the_same_way(tmp_path):
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from music_classifier.ingest.sheet_source import read_xlsx

    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    ws.append(["Alice", "Radiohead - Creep", "Rock"])
    ws["C4"] = "Jazz"  # row 3 is a gap, row 4 has only its last cell
    ws["F2"].font = Font(bold=True)  # a styled empty cell: no column for it
    wb.save(tmp_path / "s.xlsx")
    table = read_xlsx(tmp_path / "s.xlsx")
    assert table.headers == HEADER
    assert table.rows == [["Alice", "Radiohead - Creep", "Rock"], ["", "", ""], ["", "", "Jazz"]]


# --------------------------------------------------------------------------- CSV


def songs_csv(path, n_rows: int, wide_row: int, wide_line: str):
    lines = [",".join(HEADER)] + [f"Student{i},Artist{i} - Song{i},Rock" for i in range(n_rows)]
    lines[wide_row] = wide_line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_row_of_20000_extra_commas_among_100k_rows(tmp_path):
    path = songs_csv(tmp_path / "wide.csv", 100_000, 50_000, "Eve,Daft Punk - One More Time,Electronic" + "," * 20_000)
    result = read_bounded("read_csv", path)
    assert result["headers"] == HEADER
    assert result["n_rows"] == 100_000
    assert result["filled"][0] == [2, ["Student0", "Artist0 - Song0", "Rock"]]
    table = read_csv(path)
    assert table.rows[49_999] == ["Eve", "Daft Punk - One More Time", "Electronic"]


def test_csv_50mb_line_of_commas_stays_in_bounded_memory(tmp_path):
    path = songs_csv(tmp_path / "commas.csv", 1000, 500, "Eve,Daft Punk - One More Time,Electronic" + "," * 50_000_000)
    result = read_bounded("read_csv", path)
    assert result["headers"] == HEADER
    assert result["n_rows"] == 1000


def test_csv_50mb_line_with_a_far_cell_is_one_line_naming_the_line(tmp_path):
    path = songs_csv(tmp_path / "far.csv", 1000, 500, "Eve" + "," * 50_000_000 + "x")
    message = read_bounded("read_csv", path)["error"]
    assert "\n" not in message
    assert message.startswith(f"{path}: line 501 has cells beyond column")
    assert f"the cap is {MAX_COLUMNS} columns" in message


def test_csv_quoted_newlines_cannot_smuggle_a_wide_record(tmp_path):
    """Each physical line stays under the cap, the record does not: refused after parsing."""
    piece = '"a\nb"' + "," * (MAX_COLUMNS // 2)
    path = tmp_path / "smuggle.csv"
    path.write_text(",".join(HEADER) + "\n" + piece * 4 + "x\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"smuggle\.csv: row 2 has cells beyond column .*the cap is {MAX_COLUMNS}"):
        read_csv(path)


class CountingRow(list):
    """A row that counts how often it is looked at: its length asked or a cell read by index."""

    looks = 0

    def __len__(self):
        CountingRow.looks += 1
        return super().__len__()

    def __getitem__(self, index):
        if isinstance(index, int):
            CountingRow.looks += 1
        else:
            start, stop, _ = index.indices(super().__len__())
            CountingRow.looks += max(0, stop - start)
        return super().__getitem__(index)


def test_blank_column_scan_is_linear_in_the_cells_present():
    """build_table's check that blank-header columns hold no data looks at each row a bounded
    number of times plus once per cell (the old scan looked at every row once per blank column:
    2,000 rows x 900 blank columns here)."""
    rows = [CountingRow(["Student", "Song - X", "Rock"]) for _ in range(2000)]
    rows[1000] = CountingRow(["Eve", "Song - Y", "Jazz"] + [""] * 900)  # 900 blank cells, under the cap
    cells = [list(HEADER)] + rows
    CountingRow.looks = 0
    table = build_table(cells, "t.csv")
    assert table.headers == HEADER and len(table.rows) == 2000
    n_cells = sum(list.__len__(row) for row in rows)
    assert CountingRow.looks <= 4 * (len(rows) + n_cells), CountingRow.looks


# --------------------------------------------------------------------------- the CLI, on both databases

CLI_CHILD = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    from music_classifier.cli import main
    sys.argv = ["music-classifier", *sys.argv[1:]]
    main()
""").format(limit=LIMIT_BYTES)


def sync_bounded(engine, *args) -> subprocess.CompletedProcess:
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.run([sys.executable, "-c", CLI_CHILD, "--db", url, "sheet", "sync", *map(str, args)],
                          capture_output=True, text=True, timeout=HANG_S, env=CHILD_ENV)


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_sheet_sync_xlsx_beyond_the_column_cap_is_one_line(engine, tmp_path):
    path = crafted_xlsx(tmp_path / "corner.xlsx", "XFD1048576")
    assert_one_line_error(sync_bounded(engine, "--xlsx", path), str(path), "row 1048576",
                          f"the cap is {MAX_COLUMNS} columns")


def test_sheet_sync_xlsx_far_row_syncs_the_sheet(engine, tmp_path):
    """The far cell within the cap is read (a bad row: no song), the million-row gap skipped."""
    path = crafted_xlsx(tmp_path / "far.xlsx", "A1048576")
    done = sync_bounded(engine, "--xlsx", path)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert "row 1048576" in done.stdout + done.stderr


def test_sheet_sync_csv_with_a_50mb_line_is_one_line(engine, tmp_path):
    path = songs_csv(tmp_path / "far.csv", 1000, 500, "Eve" + "," * 50_000_000 + "x")
    assert_one_line_error(sync_bounded(engine, "--csv", path), str(path), "line 501",
                          f"the cap is {MAX_COLUMNS} columns")


# --------------------------------------------------------------------------- import-csv (pandas)


def feature_csv(path, layout: str, n_rows: int, wide_row: int, extra: str):
    """A feature table (tidytuesday or GTZAN layout) of ``n_rows`` rows; line ``wide_row + 1`` gets
    ``extra`` appended."""
    from test_csv_import import TIDY_HEADER, TIDY_ROWS, write_csv, write_gtzan

    if layout == "gtzan":
        write_gtzan(path, [(f"jazz.{i:05d}.wav", "jazz", float(i)) for i in range(4)])
    else:
        write_csv(path, TIDY_HEADER, TIDY_ROWS)
    header, *body = path.read_text(encoding="utf-8").splitlines()
    lines = [header] + [body[i % len(body)] for i in range(n_rows)]
    lines[wide_row] += extra
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("command", "layout", "n_rows"), [
    (["spotify", "import-csv"], "tidytuesday", 100_000),
    (["features", "import-csv", "--layout", "gtzan"], "gtzan", 10_000),
])
def test_import_csv_row_of_20000_extra_commas_is_one_line(engine, tmp_path, command, layout, n_rows):
    """pandas built every field of the wide row (usecols drops them later): 58 s and 5.7 GB for
    one row of 20,000 extra commas among 100k rows, then imported the file as if nothing happened."""
    path = feature_csv(tmp_path / "wide.csv", layout, n_rows, 501, "," * 20_000)
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-c", CLI_CHILD, "--db", url, *command, str(path)],
                          capture_output=True, text=True, timeout=HANG_S, env=CHILD_ENV)
    assert_one_line_error(done, str(path), "line 502 has more than", f"the cap is {MAX_COLUMNS} columns")


def test_line_width_check_counts_lines_of_every_ending(tmp_path):
    from music_classifier.ingest.input_limits import check_line_widths

    wide = "a" + "," * MAX_COLUMNS
    for ending in ("\n", "\r\n", "\r"):
        path = tmp_path / "t.csv"
        path.write_bytes(ending.join(["h1,h2", "1,2", wide, "3,4"]).encode())
        with pytest.raises(InputError, match=rf"line 3 has more than {MAX_COLUMNS} cells"):
            check_line_widths(path)
        path.write_bytes(ending.join(["h1,h2", "1,2", "a" + "," * (MAX_COLUMNS - 1), "3,4"]).encode())
        check_line_widths(path)  # a line at the cap is fine
