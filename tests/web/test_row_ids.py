"""Row ids in URLs on SQLite and PostgreSQL: a number no row can have is a 404 (it was a 500: SQLite cannot bind an
integer above 2**63 - 1), an out-of-range `before` is a 400, never a server error."""

import pytest

from app.web.common import MAX_ROW_ID

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        f"/watches/{HUGE}",
        f"/watches/{HUGE}/edit",
        f"/backtests/{HUGE}",
        f"/settings/accounts/{HUGE}/risk",
        f"/analyses/{2**63}",
        f"/analyses/{MAX_ROW_ID + 1}",
        f"/accounts/{HUGE}/equity.json",
    ],
)
def test_an_id_no_row_can_have_is_a_404(signed_in, path):
    assert signed_in.get(path).status_code == 404


def test_the_largest_row_id_is_still_looked_up(signed_in):
    assert signed_in.get(f"/analyses/{MAX_ROW_ID}").status_code == 404  # matched, then not found: no error


@pytest.mark.parametrize("path", ["/analyses", "/orders", "/trades", "/positions"])
def test_a_before_beyond_any_row_is_a_400_naming_it(signed_in, path):
    response = signed_in.get(f"{path}?before={HUGE}")
    assert response.status_code == 400
    assert "must be a row number, got &#34;" + HUGE in response.get_data(as_text=True)


def test_a_watch_page_with_a_before_beyond_any_row_is_a_400(signed_in, ada):
    from app.extensions import db
    from tests import factories

    watch = factories.watch(db.session, ada, ada.accounts[0])
    db.session.commit()
    assert signed_in.get(f"/watches/{watch.id}?before={HUGE}").status_code == 400
    assert signed_in.get(f"/watches/{watch.id}?before=12").status_code == 200
