"""Reading the class sheet from CSV, XLSX, the Sheets API (gspread over HTTP) and the CSV export."""

from __future__ import annotations

import json

import pytest
from fake_google import FakeGoogle

from music_classifier.errors import InputError, RemoteError
from music_classifier.ingest.sheet_source import read_csv, read_google_sheet, read_sheet_csv_export, read_xlsx
from music_classifier.settings import get_settings

ROWS = [
    ["Student", "Song", "Coarse Genre", "Genre 1"],
    ["Алиса", "Кино - Группа крови", "Rock", "Post-Punk"],
    ["Bob", "Beyoncé - Halo", "Pop", ""],
]
KEY = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.fixture
def fake():
    with FakeGoogle() as server:
        yield server


def settings_for(fake: FakeGoogle):
    return get_settings(sheets_api_url=fake.sheets_api_url, sheets_export_url=fake.export_url)


def write_csv(path, rows, encoding="utf-8", delimiter=","):
    path.write_bytes("\r\n".join(delimiter.join(r) for r in rows).encode(encoding))
    return path


# --------------------------------------------------------------------------- CSV


def test_csv_utf8_with_bom_and_semicolons(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(";".join(r) for r in ROWS).encode())
    table = read_csv(path)
    assert table.headers == ["Student", "Song", "Coarse Genre", "Genre 1"]
    assert table.rows[0] == ["Алиса", "Кино - Группа крови", "Rock", "Post-Punk"]
    assert table.first_row_number == 2


def test_csv_in_cp1251_is_detected(tmp_path):
    table = read_csv(write_csv(tmp_path / "ru.csv", ROWS[:2], encoding="cp1251"))
    assert table.rows[0][:2] == ["Алиса", "Кино - Группа крови"]


def test_csv_in_cp1252_is_not_mistaken_for_cyrillic(tmp_path):
    table = read_csv(write_csv(tmp_path / "fr.csv", [ROWS[0], ROWS[2]], encoding="cp1252"))
    assert table.rows[0][1] == "Beyoncé - Halo"


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf\r\n\r\n", b",,,\n,,\n"])
def test_empty_csv_is_one_line_error(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty"):
        read_csv(path)


@pytest.mark.parametrize("content", [bytes(range(256)) * 8, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50])
def test_binary_csv_is_refused(tmp_path, content):
    path = tmp_path / "song.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"song\.csv: not a text CSV file"):
        read_csv(path)


def test_xlsx_given_as_csv_says_use_xlsx(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(InputError, match="use --xlsx"):
        read_csv(path)


def test_csv_empty_header_cell_names_the_column(tmp_path):
    path = write_csv(tmp_path / "h.csv", [["student", "", "coarse_genre"], ["a", "x - y", "rock"]])
    with pytest.raises(InputError, match=r"h\.csv: column B has an empty header cell"):
        read_csv(path)


def test_trailing_blank_columns_are_dropped(tmp_path):
    table = read_csv(write_csv(tmp_path / "t.csv", [["student", "song", "coarse_genre", "", ""],
                                                     ["a", "x - y", "rock", "", ""]]))
    assert table.headers == ["student", "song", "coarse_genre"]
    assert table.rows == [["a", "x - y", "rock"]]


# --------------------------------------------------------------------------- XLSX


def make_xlsx(path, rows, title="Songs"):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def test_xlsx_reads_strings_and_numbers(tmp_path):
    path = make_xlsx(tmp_path / "s.xlsx", [["student", "song", "coarse_genre", "year"],
                                           ["Алиса", "Кино - Группа крови", "Rock", 1988], [None, None, None, None]])
    table = read_xlsx(path)
    assert table.headers == ["student", "song", "coarse_genre", "year"]
    assert table.rows[0] == ["Алиса", "Кино - Группа крови", "Rock", "1988"]


def test_xlsx_empty_header_cell_names_file_and_column(tmp_path):
    path = make_xlsx(tmp_path / "s.xlsx", [["student", None, "coarse_genre"], ["a", "x - y", "rock"]])
    with pytest.raises(InputError, match=r"s\.xlsx: column B has an empty header cell"):
        read_xlsx(path)


def test_xlsx_unknown_worksheet_lists_the_others(tmp_path):
    path = make_xlsx(tmp_path / "s.xlsx", [["student"]], title="Songs")
    with pytest.raises(InputError, match="no worksheet 'Nope' \\(worksheets: Songs\\)"):
        read_xlsx(path, worksheet="Nope")


@pytest.mark.parametrize("content", [b"", b"student,song\n", bytes(range(256))])
def test_not_an_xlsx(tmp_path, content):
    path = tmp_path / "bad.xlsx"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.xlsx: (not a valid XLSX workbook|the file is empty)"):
        read_xlsx(path)


# --------------------------------------------------------------------------- Sheets API through gspread


def test_gspread_reads_a_shared_sheet_over_http(fake, tmp_path):
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.add_sheet(KEY, ROWS, shared_with={"sync@class-project.iam.gserviceaccount.com"},
                   more={"Other": [["student"], ["x"]]})
    table = read_google_sheet(f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=0", credentials=creds,
                              settings=settings_for(fake))
    assert table.headers == ROWS[0]
    assert table.rows == [ROWS[1], ROWS[2]]  # the API drops the trailing empty cell; rows are padded back
    paths = [r.path for r in fake.requests]
    assert paths[0] == "/token"
    assert f"/v4/spreadsheets/{KEY}/values/%27Sheet1%27" in paths
    assert all(r.headers["authorization"].startswith("Bearer ya29.fake-") for r in fake.api_requests())

    other = read_google_sheet(KEY, worksheet="Other", credentials=creds, settings=settings_for(fake))
    assert other.rows == [["x"]] and "[Other]" in other.origin


def test_gspread_403_names_the_service_account_and_sheet(fake, tmp_path):
    creds = fake.write_service_account(tmp_path / "sa.json", email="robot@proj.iam.gserviceaccount.com")
    fake.add_sheet(KEY, ROWS, shared_with={"teacher@example.org"})
    with pytest.raises(RemoteError) as err:
        read_google_sheet(KEY, credentials=creds, settings=settings_for(fake))
    message = str(err.value)
    assert "robot@proj.iam.gserviceaccount.com" in message and KEY in message and "\n" not in message


def test_gspread_404(fake, tmp_path):
    creds = fake.write_service_account(tmp_path / "sa.json")
    with pytest.raises(RemoteError, match=f"Google Sheet {KEY} not found"):
        read_google_sheet(KEY, credentials=creds, settings=settings_for(fake))


def test_gspread_unknown_worksheet(fake, tmp_path):
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.add_sheet(KEY, ROWS, shared_with={"sync@class-project.iam.gserviceaccount.com"})
    with pytest.raises(InputError, match=r"no worksheet 'Week 2' \(worksheets: Sheet1\)"):
        read_google_sheet(KEY, worksheet="Week 2", credentials=creds, settings=settings_for(fake))


def test_gspread_429_waits_for_retry_after_then_succeeds(fake, tmp_path):
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.add_sheet(KEY, ROWS, shared_with={"sync@class-project.iam.gserviceaccount.com"})
    fake.fail_next(429, headers={"Retry-After": "1"})
    table = read_google_sheet(KEY, credentials=creds, settings=settings_for(fake))
    assert len(table.rows) == 2
    api = fake.api_requests()
    assert [r.status for r in api[:2]] == [429, 200]
    assert api[1].at - api[0].at >= 0.95  # Retry-After: 1 was honoured


def test_gspread_500_then_success(fake, tmp_path):
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.add_sheet(KEY, ROWS, shared_with={"sync@class-project.iam.gserviceaccount.com"})
    fake.fail_next(500)
    table = read_google_sheet(KEY, credentials=creds, settings=settings_for(fake))
    assert len(table.rows) == 2
    assert [r.status for r in fake.api_requests()][:2] == [500, 200]


def test_gspread_gives_up_after_bounded_retries(fake, tmp_path, monkeypatch):
    import music_classifier.ingest.sheet_source as source

    monkeypatch.setattr(source, "BACKOFF_BASE_S", 0.01)  # keep the test fast; the bound is what is tested
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.add_sheet(KEY, ROWS, shared_with={"sync@class-project.iam.gserviceaccount.com"})
    fake.fail_next(503, count=50)
    with pytest.raises(RemoteError, match="error 503"):
        read_google_sheet(KEY, credentials=creds, settings=settings_for(fake))
    assert len(fake.api_requests()) == source.MAX_ATTEMPTS


def test_bad_credentials_file(tmp_path, fake):
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "authorized_user"}))
    with pytest.raises(InputError, match="not a Google service-account key"):
        read_google_sheet(KEY, credentials=path, settings=settings_for(fake))


# --------------------------------------------------------------------------- CSV export (shared by link)


def test_csv_export_of_a_link_shared_sheet(fake):
    fake.add_sheet(KEY, ROWS, link_shared=True, more={"Week 2": [["student", "song"], ["z", "a - b"]]})
    table = read_sheet_csv_export(KEY, settings=settings_for(fake))
    assert table.rows[0] == ROWS[1]
    week2 = read_sheet_csv_export(f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=1000",
                                  settings=settings_for(fake))
    assert week2.rows == [["z", "a - b"]]
    assert fake.requests[-1].query == {"format": ["csv"], "gid": ["1000"]}
    assert all("authorization" not in r.headers for r in fake.requests)


def test_csv_export_of_a_private_sheet_says_share_it(fake):
    fake.add_sheet(KEY, ROWS, link_shared=False)
    with pytest.raises(RemoteError, match=f"Google Sheet {KEY} is not shared by link"):
        read_sheet_csv_export(KEY, settings=settings_for(fake))


def test_csv_export_retries_429(fake):
    fake.add_sheet(KEY, ROWS, link_shared=True)
    fake.fail_next(429, headers={"Retry-After": "1"})
    assert len(read_sheet_csv_export(KEY, settings=settings_for(fake)).rows) == 2
    assert [r.status for r in fake.requests] == [429, 200]


def test_not_a_key_or_url(fake):
    with pytest.raises(InputError, match="neither a spreadsheet key nor"):
        read_sheet_csv_export("my sheet", settings=settings_for(fake))


def test_token_refused_is_one_line(fake, tmp_path):
    creds = fake.write_service_account(tmp_path / "sa.json")
    fake.public_keys.clear()  # the fake no longer knows the key: invalid_grant, as for a deleted key
    fake.add_sheet(KEY, ROWS, shared_with={"sync@class-project.iam.gserviceaccount.com"})
    with pytest.raises(RemoteError, match="Google token request for sync@class-project.iam.gserviceaccount.com "
                                          "failed at http://127.0.0.1:") as err:
        read_google_sheet(KEY, credentials=creds, settings=settings_for(fake))
    assert "\n" not in str(err.value) and "invalid_grant" in str(err.value)
