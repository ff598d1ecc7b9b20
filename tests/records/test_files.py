"""Files: checked on upload, claimed by a record, served only to its readers."""

from __future__ import annotations

import io

import pytest

from metamodel import publish
from records.errors import NotFound, ValidationFailed
from records.service import Records

from ..metamodel.builders import document, entity, field

DOC = document(
    entity(
        "visit",
        field("subject", required=True),
        field("photos", "file", accept=["image/*"], max_size_mb=0.001, multiple=True),
        field("contract", "file", accept=[".pdf"]),
        field("signature", "signature"),
        permissions={"sales": ["read:own", "create", "update:own"]},
    ),
    roles=[{"name": "sales"}],
)


@pytest.fixture
def service(engine, tmp_path, users):
    publish.apply_document(engine, DOC)
    return Records(engine, files_root=tmp_path / "uploads")


def upload(service, actor, field_name, data=b"\x89PNG...", name="a.png", mime="image/png"):
    return service.upload(actor, "shop", "visit", field_name, io.BytesIO(data), name, mime)


def test_uploads_are_checked_against_the_field(service, users):
    li = users["li"]
    assert upload(service, li, "photos")["size"] == 7
    with pytest.raises(ValidationFailed, match="this field takes image/"):
        upload(service, li, "photos", name="a.exe", mime="application/x-msdownload")
    with pytest.raises(ValidationFailed, match="larger than"):
        upload(service, li, "photos", data=b"x" * 2000)
    assert (
        upload(service, li, "contract", name="合同.pdf", mime="application/pdf")["name"]
        == "合同.pdf"
    )
    with pytest.raises(ValidationFailed, match="image/png"):
        upload(service, li, "signature", name="sig.jpg", mime="image/jpeg")


def test_a_record_claims_its_files_and_only_its_readers_get_them(service, users):
    li, zhao, admin = users["li"], users["zhao"], users["admin"]
    photo = upload(service, li, "photos")
    visit = service.create(li, "shop", "visit", {"subject": "拜访", "photos": [photo["id"]]})
    assert visit["photos"] == [photo]
    assert service.open_file(li, photo["id"]).path.read_bytes() == b"\x89PNG..."
    assert service.open_file(admin, photo["id"]).size == 7
    with pytest.raises(NotFound):
        service.open_file(zhao, photo["id"])  # zhao reads only his own visits


def test_files_cannot_be_taken_from_someone_else(service, users):
    li, zhao = users["li"], users["zhao"]
    theirs = upload(service, zhao, "photos")
    with pytest.raises(ValidationFailed) as caught:
        service.create(li, "shop", "visit", {"subject": "x", "photos": [theirs["id"]]})
    assert caught.value.problems[0].path == "/photos"
    with pytest.raises(NotFound):
        service.open_file(li, theirs["id"])
    contract = upload(service, li, "contract", name="a.pdf", mime="application/pdf")
    with pytest.raises(ValidationFailed, match="no file"):
        service.create(li, "shop", "visit", {"subject": "x", "photos": [contract["id"]]})
