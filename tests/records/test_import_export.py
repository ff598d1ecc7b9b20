"""Import and export of records (CSV and XLSX), on the database under test.

The sales_pipeline example gets one more entity, ``survey``, with a field of
every importable type, so each kind of bad cell can be shown to be reported by
its row and column.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import multiprocessing
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook

from app.cli import main
from metamodel.errors import CrmError
from metamodel.jsonlogic import RuleError, evaluate, rule_data
from records import bulk, importing, read_ahead
from records import compiled as rules
from records.errors import Forbidden
from records.exporting import export_file
from records.importing import ImportRefused, import_file
from records.query import ListQuery

from .conftest import APP, EXAMPLE

SURVEY = {
    "name": "survey",
    "label": {"en": "Survey", "zh": "问卷"},
    "title_field": "name",
    "fields": [
        {"name": "ref_no", "type": "autonumber", "pattern": "S-{seq:4}", "label": "Ref"},
        {
            "name": "name",
            "type": "text",
            "required": True,
            "max_length": 20,
            "label": {"en": "Name", "zh": "名称"},
        },
        {
            "name": "visits",
            "type": "integer",
            "min": 0,
            "label": {"en": "Visits", "zh": "访问次数"},
        },
        {"name": "budget", "type": "decimal", "scale": 2, "label": {"en": "Budget", "zh": "预算"}},
        {"name": "active", "type": "boolean", "label": {"en": "Active", "zh": "有效"}},
        {"name": "met_on", "type": "date", "label": {"en": "Met on", "zh": "会面日期"}},
        {"name": "called_at", "type": "datetime", "label": {"en": "Called at", "zh": "来电时间"}},
        {
            "name": "size",
            "type": "select",
            "label": {"en": "Size", "zh": "规模"},
            "options": [
                {"value": "small", "label": {"en": "Small", "zh": "小"}},
                {"value": "large", "label": {"en": "Large", "zh": "大"}},
            ],
        },
        {
            "name": "interests",
            "type": "multiselect",
            "label": {"en": "Interests", "zh": "兴趣"},
            "options": [
                {"value": "crm", "label": {"en": "CRM", "zh": "客户管理"}},
                {"value": "erp"},
                {"value": "bi"},
            ],
        },
        {
            "name": "account",
            "type": "reference",
            "target": "account",
            "label": {"en": "Account", "zh": "客户"},
        },
        {"name": "email", "type": "email", "unique": True, "label": {"en": "Email", "zh": "邮箱"}},
        {"name": "phone", "type": "phone", "label": {"en": "Phone", "zh": "电话"}},
        {"name": "site", "type": "url", "label": {"en": "Site", "zh": "网站"}},
        {"name": "score", "type": "rating", "max": 5, "label": {"en": "Score", "zh": "评分"}},
        {"name": "rep", "type": "user", "label": {"en": "Rep", "zh": "负责人"}},
        {
            "name": "partners",
            "type": "multi_reference",
            "target": "account",
            "label": {"en": "Partners", "zh": "合作伙伴"},
        },
        {
            "name": "double_budget",
            "type": "formula",
            "result_type": "decimal",
            "scale": 2,
            "expression": {"*": [{"var": "budget"}, 2]},
            "label": {"en": "Double budget", "zh": "双倍预算"},
        },
    ],
    "permissions": {
        "sales": ["read", "create"],
        "sales_manager": ["read", "create", "import", "export"],
    },
}
HEADER = (
    "Name,Visits,Budget,Active,Met on,Called at,Size,Interests,Account,Email,Phone,Site,Score,"
    "Rep,Partners"
)
GOOD = (
    "Alpha,3,1200.50,yes,2026/5/1,2026-05-01 09:30,Large,CRM;erp,Acme,alpha@example.com,"
    "138 0013 8000,https://alpha.example,4,li,Acme;Northwind"
)
# (line of the file, the row, the column at fault)
BAD = [
    (3, "xxxxxxxxxxxxxxxxxxxxx,1,,,,,,,,,,,,,", "Name"),
    (4, "Beta,three,,,,,,,,,,,,,", "Visits"),
    (5, "Gamma,,,,2026-13-45,,,,,,,,,,", "Met on"),
    (6, "Delta,,,,,,medium,,,,,,,,", "Size"),
    (7, "Eps,,,,,,,,Nobody Ltd,,,,,,", "Account"),
    (8, "Zeta,,,,,,,,,not-an-email,,,,,", "Email"),
    (9, "Eta,,,,,,,,,,12,,,,", "Phone"),
    (10, "Theta,,,,,,,,,,,ftp://x,,,", "Site"),
    (11, ",2,,,,,,,,,,,,,", "Name"),
    (12, "Iota,,12.345,,,,,,,,,,,,", "Budget"),
    (13, "Kappa,,,maybe,,,,,,,,,,,", "Active"),
    (14, "Lambda,,,,,,,crm、xyz,,,,,,,", "Interests"),
    (15, "Mu,,,,,,,,,,,,9,,", "Score"),
    (16, "Nu,,,,,,,,,,,,,nobody,", "Rep"),
    (17, "Xi,,,,,yesterday,,,,,,,,,", "Called at"),
    (18, "Omicron,,,,,,,,,alpha@example.com,,,,,", "Email"),
    (19, "Pi,,,,,,,,Twin,,,,,,", "Account"),
    (20, "Rho,,,,,,,,,,,,,,Acme;Nowhere", "Partners"),
]


@pytest.fixture
def example_doc():
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    doc["entities"].append(json.loads(json.dumps(SURVEY)))
    return doc


@pytest.fixture(params=["inline", "read-ahead"])
def reading(request, monkeypatch):
    """Each import of the test converts its cells here, or in a read-ahead process."""
    monkeypatch.setattr(read_ahead, "MIN_BYTES", 0 if request.param == "read-ahead" else 1 << 62)
    return request.param


@pytest.fixture
def accounts(records, users):
    admin = users["admin"]
    made = {}
    for name, tier in [("Acme", "A"), ("Northwind", "B"), ("Twin", "C"), ("Twin", "C")]:
        made[name] = records.create(admin, APP, "account", {"name": name, "tier": tier})["id"]
    made["华东精工机械有限公司"] = records.create(
        admin, APP, "account", {"name": "华东精工机械有限公司"}
    )["id"]
    return made


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding, newline="")
    return path


def bad_file(tmp_path) -> Path:
    return write(
        tmp_path / "surveys.csv", "\n".join([HEADER, GOOD] + [r for _, r, _ in BAD]) + "\n"
    )


def surveys(records, admin) -> list[dict]:
    return records.list(admin, APP, "survey", None)["items"]


def live_count(records, entity: str) -> int:
    with records.reading() as conn:
        return records.count_live(conn, records.runtime(APP, entity, conn))


# --- every kind of bad cell, all or nothing, --skip-invalid -----------------------------


@pytest.mark.usefixtures("reading")
def test_every_bad_cell_is_named_by_row_and_column_and_nothing_is_imported(
    records, users, accounts, tmp_path
):
    with pytest.raises(ImportRefused) as refused:
        import_file(records, users["admin"], APP, "survey", bad_file(tmp_path))
    result = refused.value.result
    assert {(e.row, e.column) for e in result.errors} == {(row, col) for row, _, col in BAD}
    assert result.error_count == len(BAD) and result.rejected == len(BAD)
    assert result.imported == 0 and live_count(records, "survey") == 0
    by_row = {e.row: e.message for e in result.errors}
    assert "at most 20" in by_row[3]
    assert "'three' is not a whole number" in by_row[4]
    assert "'medium' is not one of the options" in by_row[6]
    assert by_row[7] == "there is no account with name 'Nobody Ltd'"
    assert by_row[11] == "is required"
    assert "also in row 2" in by_row[18]
    assert "2 account records have name 'Twin'" in by_row[19]
    assert "'Nowhere'" in by_row[20]
    assert str(result.errors[0]).startswith("row 3, column Name: ")


@pytest.mark.usefixtures("reading")
def test_skip_invalid_imports_the_good_rows_and_writes_the_rejects(
    records, users, accounts, tmp_path
):
    admin = users["admin"]
    path = bad_file(tmp_path)
    result = import_file(records, admin, APP, "survey", path, skip_invalid=True)
    assert (result.imported, result.rejected, result.rows) == (1, len(BAD), len(BAD) + 1)
    assert result.rejects_path == str(tmp_path / "surveys.rejects.csv")
    (alpha,) = surveys(records, admin)
    assert alpha["name"] == "Alpha" and alpha["visits"] == 3 and alpha["budget"] == "1200.50"
    assert alpha["double_budget"] == "2401.00" and alpha["ref_no"] == "S-0001"
    assert alpha["active"] is True and alpha["met_on"] == "2026-05-01"
    assert alpha["called_at"] == "2026-05-01T09:30:00Z"
    assert (alpha["size"], alpha["interests"]) == ("large", ["crm", "erp"])
    assert alpha["account"] == accounts["Acme"] and alpha["rep"] == users["li"].id
    assert alpha["partners"] == [accounts["Acme"], accounts["Northwind"]]
    assert alpha["phone"] == "+8613800138000"

    with open(result.rejects_path, encoding="utf-8-sig", newline="") as stream:
        rejects = list(csv.reader(stream))
    assert rejects[0] == [*HEADER.split(","), "error"]
    assert len(rejects) == 1 + len(BAD)
    assert rejects[2][0] == "Beta" and rejects[2][-1].startswith("Visits: 'three'")
    # Fix a rejected row in the rejects file itself and import it again: "error" is ignored.
    fixed = rejects[2][:-1]
    fixed[1] = "3"
    again = tmp_path / "fixed.csv"
    with again.open("w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows([rejects[0], [*fixed, rejects[2][-1]]])
    second = import_file(records, admin, APP, "survey", again)
    assert second.imported == 1 and second.ignored_columns == [
        ("error", "is the error column of a rejects file")
    ]
    assert sorted(s["ref_no"] for s in surveys(records, admin)) == ["S-0001", "S-0002"]


def test_the_header_must_fit_the_entity(records, users, tmp_path):
    admin = users["admin"]
    path = write(tmp_path / "deals.csv", "Titel,Account,Lines,Weighted amount,Amount,amount\n")
    with pytest.raises(ImportRefused) as refused:
        import_file(records, admin, APP, "deal", path)
    errors = {(e.row, e.column): e.message for e in refused.value.result.errors}
    assert errors[(1, "Titel")] == "is not a field of deal (did you mean 'Title'?)"
    assert "child table" in errors[(1, "Lines")]
    assert errors[(1, "amount")] == "names the same field as column 'Amount'"
    assert errors[(1, "Title")].startswith("is required, and the file has no column")
    assert (1, "Weighted amount") not in errors  # computed: ignored, not refused
    with pytest.raises(Exception, match="cannot tell the format"):
        import_file(records, admin, APP, "deal", write(tmp_path / "deals.json", "{}"))


# --- references, computed fields, audit --------------------------------------------------


@pytest.mark.usefixtures("reading")
def test_imported_deals_equal_created_ones_with_lookups_formulas_rollups_and_audit(
    records, users, accounts, tmp_path
):
    admin = users["admin"]
    created = records.create(
        admin,
        APP,
        "deal",
        {
            "title": "by hand",
            "account": accounts["Acme"],
            "stage": "proposal",
            "amount": "1000.50",
            "probability": 50,
            "expected_close": "2026-05-01",
        },
    )
    path = write(
        tmp_path / "deals.csv",
        "Title,Account,Stage,Amount,Probability,Expected close\n"
        'by file,Acme,Proposal,"1,000.50",50%,2026/5/1\n'
        "second,华东精工机械有限公司,won,20,10,\n",
    )
    result = import_file(records, admin, APP, "deal", path)
    assert result.imported == 2
    items = {d["title"]: d for d in records.list(admin, APP, "deal", None)["items"]}
    system = {"id", "title", "created_at", "updated_at", "version"}
    by_file = {k: v for k, v in items["by file"].items() if k not in system}
    assert by_file == {k: v for k, v in created.items() if k not in system}
    assert by_file["account_tier"] == "A" and by_file["weighted_amount"] == "500.25"
    acme = records.get(admin, APP, "account", accounts["Acme"])
    assert acme["open_deal_value"] == "2001.00"  # both open deals, refreshed once at the end
    chinese = records.get(admin, APP, "account", accounts["华东精工机械有限公司"])
    assert chinese["open_deal_value"] == "0.00"  # won deals are not in the open pipeline
    made = records.history(admin, APP, "deal", created["id"])[-1]
    imported = records.history(admin, APP, "deal", items["by file"]["id"])[-1]
    assert made["action"] == "create" and made["changes"]["amount"] == [None, "1000.50"]
    # An import's entry says where the record came from; its values are the record's own
    # until they change, and a change is recorded with the values before and after.
    assert (imported["action"], imported["actor_id"]) == ("import", admin.id)
    assert (imported["changes"], imported["comment"]) == ({}, "imported from deals.csv, row 2")
    records.update(admin, APP, "deal", items["by file"]["id"], {"amount": "1200"})
    changed = records.history(admin, APP, "deal", items["by file"]["id"])[0]
    assert changed["changes"]["amount"] == ["1000.50", "1200.00"]


# --- encodings and languages, XLSX, round trips ------------------------------------------


@pytest.mark.usefixtures("reading")
@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_chinese_labels_in_gb18030_or_utf8_with_bom(records, users, accounts, tmp_path, encoding):
    path = write(
        tmp_path / "问卷.csv",
        "名称,访问次数,预算,有效,会面日期,规模,兴趣,客户\n"
        '华东问卷,5,"1,234.50",是,2026/5/1,大,客户管理、erp,华东精工机械有限公司\n'
        "第二份,0,0,否,2026年6月2日,小,bi,\n",
        encoding,
    )
    result = import_file(records, users["admin"], APP, "survey", path)
    assert result.imported == 2
    first, second = sorted(surveys(records, users["admin"]), key=lambda s: s["id"])
    assert (first["name"], first["budget"], first["active"]) == ("华东问卷", "1234.50", True)
    assert (first["size"], first["interests"]) == ("large", ["crm", "erp"])
    assert first["account"] == accounts["华东精工机械有限公司"]
    assert (second["active"], second["met_on"], second["size"]) == (False, "2026-06-02", "small")


@pytest.mark.usefixtures("reading")
def test_xlsx_import_export_and_round_trip(records, users, accounts, tmp_path):
    admin = users["admin"]
    book = Workbook()
    sheet = book.active
    sheet.append(["name", "visits", "budget", "active", "met_on", "called_at", "interests"])
    sheet.append(
        ["Excel", 7, 99.5, True, dt.datetime(2026, 5, 1), dt.datetime(2026, 5, 1, 9, 30), "crm;bi"]
    )
    sheet.append([None] * 7)  # an empty row is skipped, but still counts as a line
    sheet.append([12345, 0, 0, False, dt.date(2026, 1, 2), None, None])
    sheet.append(["Bad", -1, None, None, None, None, None])
    path = tmp_path / "surveys.xlsx"
    book.save(path)
    with pytest.raises(ImportRefused) as refused:
        import_file(records, admin, APP, "survey", path)
    assert [(e.row, e.column) for e in refused.value.result.errors] == [(5, "visits")]
    result = import_file(records, admin, APP, "survey", path, skip_invalid=True)
    assert (result.imported, result.rejected) == (2, 1)
    excel, number = sorted(surveys(records, admin), key=lambda s: s["id"])
    assert (excel["visits"], excel["budget"], excel["active"]) == (7, "99.50", True)
    assert (excel["met_on"], excel["called_at"]) == ("2026-05-01", "2026-05-01T09:30:00Z")
    assert excel["interests"] == ["crm", "bi"] and number["name"] == "12345"

    out = tmp_path / "export.xlsx"
    assert export_file(records, admin, APP, "survey", out, language="zh") == 2
    rows = list(load_workbook(out, read_only=True).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("Ref", "名称", "访问次数")
    assert rows[1][1:5] == ("Excel", 7, 99.5, True)  # numbers and booleans stay native
    assert_round_trip(records, admin, out)


def test_csv_export_round_trip_keeps_every_value(records, users, accounts, tmp_path):
    admin = users["admin"]
    import_file(records, admin, APP, "survey", bad_file(tmp_path), skip_invalid=True)
    records.create(admin, APP, "survey", {"name": "精确", "budget": "12345678901234.56"})
    out = tmp_path / "export.csv"
    assert export_file(records, admin, APP, "survey", out) == 2
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Ref,Name,Visits,Budget,Active")
    assert "12345678901234.56" in text and "Acme;Northwind" in text and ",li," in text
    assert_round_trip(records, admin, out)


def assert_round_trip(records, admin, path):
    """Delete what is there, import the export: the same values come back."""
    before = surveys(records, admin)
    for item in before:
        records.delete(admin, APP, "survey", item["id"])
    result = import_file(records, admin, APP, "survey", path)
    assert result.imported == len(before)
    assert ("Ref", "is computed; its values are not imported") in result.ignored_columns
    skip = {"id", "created_at", "updated_at", "ref_no", "version"}
    after = surveys(records, admin)
    key = lambda s: s["name"]  # noqa: E731
    assert [{k: v for k, v in s.items() if k not in skip} for s in sorted(after, key=key)] == [
        {k: v for k, v in s.items() if k not in skip} for s in sorted(before, key=key)
    ]


# --- permissions ----------------------------------------------------------------------------


def test_import_and_export_need_their_permissions(records, users, accounts, tmp_path):
    path = write(tmp_path / "s.csv", "name\nfrom a manager\n")
    with pytest.raises(Forbidden, match="you may not import survey"):
        import_file(records, users["li"], APP, "survey", path)
    assert import_file(records, users["wang"], APP, "survey", path).imported == 1
    with pytest.raises(Forbidden, match="you may not export deal"):
        export_file(records, users["chen"], APP, "deal", io.BytesIO(), fmt="csv")
    stream = io.BytesIO()
    assert export_file(records, users["wang"], APP, "survey", stream, fmt="csv") == 1
    assert "from a manager" in stream.getvalue().decode("utf-8-sig")
    with pytest.raises(Forbidden):
        import_file(records, users["wang"], APP, "deal_line", path)


# --- the command line ---------------------------------------------------------------------


def test_crm_records_import_and_export(db_url, tmp_path, monkeypatch):
    import app as app_package

    runner = CliRunner()
    env = {"CRM_DATABASE_URL": db_url, "CRM_INSTANCE_PATH": str(tmp_path / "instance")}
    made = []
    create_app = app_package.create_app

    def tracked_create_app(*args, **kwargs):
        made.append(create_app(*args, **kwargs))
        return made[-1]

    # Each command builds an app and an engine; close its connections after the command.
    monkeypatch.setattr(app_package, "create_app", tracked_create_app)

    def crm(*args):
        try:
            return runner.invoke(main, list(args), env=env, catch_exceptions=False)
        finally:
            while made:
                made.pop().extensions["crm"].engine.dispose()

    assert crm("init", "--admin-password", "pw").exit_code == 0
    assert crm("app", "apply", str(EXAMPLE), "--yes").exit_code == 0
    accounts = write(tmp_path / "accounts.csv", "Name,Value tier\nAcme,A\n华东精工,B\n")
    done = crm("records", "import", APP, "account", str(accounts))
    assert done.exit_code == 0, done.output
    assert "imported 2 account records" in done.output
    deals = write(tmp_path / "deals.csv", "Title,Account,Amount\nOne,Acme,10\nTwo,Nobody,x\n")
    refused = crm("records", "import", APP, "deal", str(deals))
    assert refused.exit_code == 1
    assert "row 3, column Account: there is no account with name 'Nobody'" in refused.output
    assert "row 3, column Amount: 'x' is not a number" in refused.output
    rejects = tmp_path / "bad.csv"
    skipped = crm(
        "records", "import", APP, "deal", str(deals), "--skip-invalid", "--rejects", str(rejects)
    )
    assert skipped.exit_code == 0, skipped.output
    assert f"rejected 1 rows, written to {rejects}" in skipped.output and rejects.exists()
    assert crm("records", "import", APP, "deal", str(deals), "--as", "nobody").exit_code == 1
    listed = crm("records", "export", APP, "deal", "--names")
    assert listed.exit_code == 0
    assert listed.output.lstrip("\ufeff").splitlines()[1].startswith("One,Acme,A,lead,10.00")
    out = tmp_path / "accounts.xlsx"
    written = crm("records", "export", APP, "account", "-o", str(out), "--lang", "zh")
    assert written.exit_code == 0 and "wrote 2 account records" in written.output
    header = next(load_workbook(out, read_only=True).active.iter_rows(values_only=True))
    assert header[:2] == ("编号", "名称")
    assert crm("records", "export", APP, "nothing").exit_code == 1


# --- the compiled rules are the evaluator's -----------------------------------------------

CASES_FILE = Path(__file__).parents[1] / "metamodel" / "jsonlogic_cases.json"
TAGS = {
    "$decimal": Decimal,
    "$date": dt.date.fromisoformat,
    "$datetime": dt.datetime.fromisoformat,
    "$number": float,
}


def _decode(obj: dict):
    if len(obj) == 1:
        ((key, value),) = obj.items()
        if key in TAGS:
            return TAGS[key](value)
    return obj


def _outcome(run):
    try:
        return ("value", repr(run()))
    except (RuleError, RecursionError):
        return ("error", None)


def test_compiled_rules_give_the_evaluators_answers():
    document = json.loads(CASES_FILE.read_text(encoding="utf-8"), object_hook=_decode)
    checked = 0
    for cases in document["groups"].values():
        for case in cases:
            rule, data, context = case["rule"], case.get("data"), case.get("context")
            expected = _outcome(lambda: evaluate(rule, data, context))  # noqa: B023
            compiled = rules.compile_rule(rule)
            got = _outcome(lambda: rules.defined(compiled(rule_data(data, context))))  # noqa: B023
            assert got == expected, case
            reads, _uses_context = rules.rule_reads(rule)
            if isinstance(data, dict) and reads is not None and context is None:
                cut = {k: v for k, v in data.items() if k in reads}
                assert _outcome(lambda: rules.defined(compiled(rule_data(cut)))) == expected  # noqa: B023
            checked += 1
    assert checked > 300


@pytest.mark.parametrize("operator", ["*", "/"])
def test_compiled_decimal_arithmetic_is_the_evaluators_to_the_last_digit(operator):
    numbers = [
        *[Decimal(text) for text in ("0", "-0.00", "2.50", "-3", "1E+400", "1E-400", "12.345")],
        *[Decimal("NaN"), Decimal("Infinity"), 7, 0, -1, 10**20, True, 1.5, None, "4"],
    ]
    compiled = rules.compile_rule({operator: [{"var": "a"}, {"var": "b"}]})
    for a in numbers:
        for b in numbers:
            data = rule_data({"a": a, "b": b})
            rule = {operator: [{"var": "a"}, {"var": "b"}]}
            expected = _outcome(lambda: evaluate(rule, data))  # noqa: B023
            got = _outcome(lambda: rules.defined(compiled(data)))  # noqa: B023
            assert repr(got) == repr(expected), (a, b)


# --- the search index ------------------------------------------------------------------


@pytest.mark.usefixtures("reading")
def test_imported_records_are_found_by_search_and_later_ones_too(
    records, users, tmp_path, monkeypatch
):
    # Small batches and ranges: the search index is filled over several ranges.
    monkeypatch.setattr(importing, "BATCH_SIZE", 7)
    monkeypatch.setattr(bulk, "FTS_RANGE", 10)
    admin = users["admin"]
    names = [f"Kunlun {n:03d} 昆仑贸易" for n in range(40)]
    path = write(tmp_path / "accounts.csv", "Name\n" + "\n".join(names) + "\n")
    assert import_file(records, admin, APP, "account", path).imported == 40

    def found(q: str) -> list[str]:
        page = records.list(admin, APP, "account", ListQuery(q=q, per_page=200))
        return sorted(item["name"] for item in page["items"])

    assert found("kunlun") == sorted(names)
    assert found("n 017 昆") == [names[17]]
    assert found("昆仑贸") == sorted(names)
    # The per-row upkeep is back once the import is over.
    records.create(admin, APP, "account", {"name": "Kunlun Late"})
    assert found("un lat") == ["Kunlun Late"]


def test_a_refused_import_leaves_the_search_index_and_its_upkeep_as_they_were(
    records, users, tmp_path
):
    admin = users["admin"]
    path = write(tmp_path / "accounts.csv", "Name,Tier\nOrinoco One,A\nOrinoco Two,nope\n")
    with pytest.raises(ImportRefused):
        import_file(records, admin, APP, "account", path)
    records.create(admin, APP, "account", {"name": "Orinoco Three"})
    page = records.list(admin, APP, "account", ListQuery(q="orinoco"))
    assert [item["name"] for item in page["items"]] == ["Orinoco Three"]


# --- reading ahead in a second process ----------------------------------------------------


def test_a_reading_error_half_way_is_reported_alike_and_nothing_is_imported(
    records, users, tmp_path, reading, monkeypatch
):
    monkeypatch.setattr(importing, "BATCH_SIZE", 5)
    rows = [f"Account {n}" for n in range(30)]
    rows[22] = "x" * (csv.field_size_limit() + 1)  # more than the csv module reads
    path = write(tmp_path / "accounts.csv", "Name\n" + "\n".join(rows) + "\n")
    with pytest.raises(CrmError) as failed:
        import_file(records, users["admin"], APP, "account", path)
    assert failed.value.message.startswith("accounts.csv, line 25: cannot read: field larger")
    assert live_count(records, "account") == 0


def test_an_import_stopped_half_way_leaves_no_process_and_no_records(
    records, users, tmp_path, reading, monkeypatch
):
    monkeypatch.setattr(importing, "BATCH_SIZE", 5)
    path = write(tmp_path / "accounts.csv", "Name\n" + "\n".join(f"A {n}" for n in range(50)))

    def progress(result):
        if result.rows >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_file(records, users["admin"], APP, "account", path, progress=progress)
    assert multiprocessing.active_children() == []
    assert live_count(records, "account") == 0
    # The same file, let run, goes in whole.
    assert import_file(records, users["admin"], APP, "account", path).imported == 50


def test_big_files_are_read_ahead_by_default(records, users, tmp_path, monkeypatch):
    seen = []
    real = read_ahead.converted_batches

    def watched(batches, convert, *, parallel):
        seen.append(parallel)
        return real(batches, convert, parallel=parallel)

    monkeypatch.setattr(read_ahead, "converted_batches", watched)
    monkeypatch.setattr(read_ahead, "MIN_BYTES", 100)
    small = write(tmp_path / "small.csv", "Name\nOne\n")
    big = write(tmp_path / "big.csv", "Name\n" + "\n".join(f"Big {n}" for n in range(20)))
    assert import_file(records, users["admin"], APP, "account", small).imported == 1
    assert import_file(records, users["admin"], APP, "account", big).imported == 20
    assert import_file(records, users["admin"], APP, "account", big, read_ahead=False).imported
    assert seen == [False, True, False]


@pytest.mark.usefixtures("reading")
def test_text_with_tabs_newlines_and_backslashes_is_stored_as_written(records, users, tmp_path):
    notes = ["line one\nline two", "tab\there", "back\\slash \\N and \\.", "回车\r\n结尾\\"]
    path = tmp_path / "accounts.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["Name", "Notes"])
        writer.writerows([f"Account {n}", note] for n, note in enumerate(notes))
    assert import_file(records, users["admin"], APP, "account", path).imported == len(notes)
    stored = records.list(users["admin"], APP, "account", None)["items"]
    assert sorted((a["name"], a["notes"]) for a in stored) == [
        (f"Account {n}", note) for n, note in enumerate(notes)
    ]


@pytest.mark.usefixtures("reading")
def test_every_imported_record_has_its_own_audit_entry_naming_its_row(
    records, users, tmp_path, monkeypatch
):
    # Small batches, rejected rows in between: entries made by runs and one by one.
    monkeypatch.setattr(importing, "BATCH_SIZE", 7)
    monkeypatch.setattr(importing, "AUDIT_BLOCK", 20)
    admin = users["admin"]
    lines = [f"Run {n:02d},{'nope' if n in (3, 40, 41, 45) else 'A'}" for n in range(60)]
    path = write(tmp_path / "accounts.csv", "Name,Tier\n" + "\n".join(lines) + "\n")
    result = import_file(records, admin, APP, "account", path, skip_invalid=True)
    assert (result.imported, result.rejected) == (56, 4)
    accounts = records.list(admin, APP, "account", ListQuery(per_page=100))["items"]
    assert len(accounts) == 56
    for account in accounts:
        (entry,) = records.history(admin, APP, "account", account["id"])
        row = int(account["name"].removeprefix("Run ")) + 2  # the header is row 1
        assert entry["comment"] == f"imported from accounts.csv, row {row}"
        assert (entry["action"], entry["actor_id"], entry["changes"]) == ("import", admin.id, {})
        assert entry["at"] == account["created_at"]
    with records.reading() as conn:
        (count,) = conn.exec_driver_sql("SELECT count(*) FROM crm_audit").one()
    assert count == 56  # one entry per record, no more


@pytest.mark.usefixtures("reading")
@pytest.mark.parametrize("computed", ["with the cells", "with the record"])
def test_a_value_computed_too_large_to_store_is_an_error_of_its_row(
    records, users, accounts, tmp_path, monkeypatch, computed
):
    if computed == "with the record":
        # As a formula reading a reference or a default is: computed as the row is written.
        monkeypatch.setattr(
            importing._Importer, "_split_formulas", lambda self: ([], list(self.formulas))
        )
    admin = users["admin"]
    path = write(tmp_path / "s.csv", "name,budget\nfits,1\nhuge,9999999999999999.99\nalso,2\n")
    message = "is computed as 19999999999999999.98, too large to store"
    with pytest.raises(ImportRefused) as refused:
        import_file(records, admin, APP, "survey", path)
    assert [str(e) for e in refused.value.result.errors] == [
        f"row 3, column Double budget: {message}"
    ]
    assert live_count(records, "survey") == 0
    result = import_file(records, admin, APP, "survey", path, skip_invalid=True)
    assert (result.imported, result.rejected) == (2, 1)
    assert sorted(s["double_budget"] for s in surveys(records, admin)) == ["2.00", "4.00"]
    with open(result.rejects_path, encoding="utf-8-sig", newline="") as stream:
        assert list(csv.reader(stream))[1] == [
            "huge",
            "9999999999999999.99",
            f"Double budget: {message}",
        ]


def test_a_memoised_conversion_converts_each_repeated_text_once(monkeypatch):
    from metamodel.field_types import ValueProblem

    monkeypatch.setattr(importing, "MEMO_SIZE", 4)
    calls = []

    def convert(raw):
        calls.append(raw)
        if raw == "bad":
            raise ValueProblem("is bad")
        return [raw.upper()]

    repeated = importing.memoised(convert)
    for raw in ["a", "b", "a", "a", "b", "a", "bad", "c", "a", "b", "c", "d", "e", "a"]:
        if raw == "bad":
            with pytest.raises(ValueProblem, match="is bad"):
                repeated(raw)
            continue
        result = repeated(raw)
        assert result == [raw.upper()]
        result.append("changed by the caller")  # the next answer is not
    # "a", "b", "bad", "c" filled the memo after enough repeats: "d" and "e" are new.
    assert calls == ["a", "b", "bad", "c", "d", "e"]
    with pytest.raises(ValueProblem, match="is bad"):
        repeated("bad")
    assert calls[-1] == "e"

    # Texts that never repeat: once the memo is full it is no longer looked in.
    calls.clear()
    distinct = importing.memoised(convert)
    texts = [f"n{n}" for n in range(10)]
    assert [distinct(t) for t in texts + texts[:2]] == [[t.upper()] for t in texts + texts[:2]]
    assert calls == texts + texts[:2]


@pytest.mark.usefixtures("reading")
def test_a_unique_value_taken_after_the_check_rejects_only_its_row(
    records, users, accounts, tmp_path, monkeypatch
):
    from sqlalchemy import insert

    # Between the batch's unique check and its write, a record takes alpha's e-mail.
    checked = importing._Importer._check_unique

    def then_taken(self, rows):
        checked(self, rows)
        now = records.clock()
        self.db().execute(
            insert(self.table).values(
                name="Meanwhile",
                email="alpha@example.com",
                created_at=now,
                updated_at=now,
                version=1,
            )
        )

    monkeypatch.setattr(importing._Importer, "_check_unique", then_taken)
    path = write(
        tmp_path / "s.csv",
        "name,email\nAlpha,alpha@example.com\nBeta,beta@example.com\nGamma,\n",
    )
    result = import_file(records, users["admin"], APP, "survey", path, skip_invalid=True)
    assert (result.imported, result.rejected) == (2, 1)
    (error,) = result.errors
    assert error.row == 2 and "conflicts with a record saved meanwhile" in error.message
    names = sorted(s["name"] for s in surveys(records, users["admin"]))
    assert names == ["Beta", "Gamma", "Meanwhile"]
