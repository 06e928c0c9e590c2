"""The history checker fails every broken history it is fed, and passes a sound one (with its figures)."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.history import (
    HistoryWriter,
    Operation,
    Record,
    Request,
    check,
    classify,
    read_history,
)


def request(tag: str, key: str | None = None, count: int = 1) -> Request:
    return Request(tag=tag, pool="default", count=count, reference="ref", key=key)


def ok(op: str, req: Request, *codes: str) -> Operation:
    return Operation(op, "p1", req, "ok", list(codes), "201")


def info(op: str, req: Request) -> Operation:
    return Operation(op, "p1", req)


def record(code: str, tag: str) -> Record:
    return Record(code=code, pool="default", used_by=tag, reference="ref")


def records(*pairs: tuple[str, str]) -> dict[str, Record]:
    return {code: record(code, tag) for code, tag in pairs}


def test_a_sound_history_is_valid_and_counted() -> None:
    a, b, c = request("a"), request("b", key="k-b"), request("c", key="k-c")
    history = [
        ok("1", a, "AAAA"),
        info("2", b),  # killed after its claim committed
        ok("3", b, "BBBB"),  # the retry with the same key gets that code
        info("4", request("d")),  # committed after its client gave up, no key: burned
        Operation("5", "p1", c, "fail", [], "503 pool_empty"),
    ]
    table = records(("AAAA", "a"), ("BBBB", "b"), ("DDDD", "d"))
    report = check(history, table)
    assert report.valid, report.violations
    assert report.figures() == {
        "ops": 5,
        "ok": 2,
        "fail": 1,
        "info": 2,
        "delivered": 2,
        "recorded": 3,
        "duplicated": 0,
        "lost": 0,
        "mismatched": 0,
        "second_sets": 0,
        "burned": 1,
        "recovered": 1,
    }


def test_a_code_delivered_twice_is_a_duplicate() -> None:
    report = check([ok("1", request("a"), "AAAA"), ok("2", request("b"), "AAAA")], records(("AAAA", "a")))
    assert not report.valid
    assert report.duplicated == 1
    assert "duplicate: AAAA" in report.violations[0]


def test_an_acknowledged_code_missing_from_the_table_is_lost() -> None:
    report = check([ok("1", request("a"), "AAAA")], {})
    assert (report.valid, report.lost) == (False, 1)


def test_an_acknowledged_code_recorded_for_another_request_is_a_mismatch() -> None:
    report = check([ok("1", request("a"), "AAAA")], records(("AAAA", "z")))
    assert (report.valid, report.mismatched) == (False, 1)
    wrong_pool = {"AAAA": Record(code="AAAA", pool="other", used_by="a", reference="ref")}
    assert not check([ok("1", request("a"), "AAAA")], wrong_pool).valid


def test_a_replay_with_other_codes_is_a_second_set() -> None:
    keyed = request("a", key="k")
    report = check([ok("1", keyed, "AAAA"), ok("2", keyed, "BBBB")], records(("AAAA", "a"), ("BBBB", "a")))
    assert not report.valid
    assert report.second_sets == 2


def test_a_key_with_two_sets_in_the_table_is_a_violation_even_if_one_was_never_delivered() -> None:
    """The retry after a crash claimed afresh: the first set is in the table, the client got the second."""
    keyed = request("a", key="k")
    report = check([info("1", keyed), ok("2", keyed, "BBBB")], records(("AAAA", "a"), ("BBBB", "a")))
    assert not report.valid
    assert report.second_sets == 1


def test_a_success_with_the_wrong_number_of_codes_is_a_violation() -> None:
    report = check([ok("1", request("a", count=2), "AAAA")], records(("AAAA", "a")))
    assert not report.valid


def test_histories_survive_kills_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "p1.jsonl"
    writer = HistoryWriter(path, "p1")
    writer.invoked("1", request("a", key="k"))
    writer.completed("1", "ok", ["AAAA"], "201")
    writer.invoked("2", request("b"))  # the process was killed here
    writer.close()
    with path.open("a") as cut:
        cut.write('{"event":"inv')  # and a line cut short
    operations = read_history([path])
    assert [(o.id, o.outcome, o.codes) for o in operations] == [("1", "ok", ["AAAA"]), ("2", "info", [])]
    assert operations[0].request.key == "k"


def test_answers_are_classified_by_what_they_prove() -> None:
    assert classify(201, {"code": "AAAA"}) == ("ok", ["AAAA"], "201")
    assert classify(201, {"codes": [{"code": "A"}, {"code": "B"}]})[1] == ["A", "B"]
    assert classify(400, {"error": {"code": "invalid_request"}})[0] == "fail"
    assert classify(503, {"error": {"code": "pool_empty"}})[0] == "fail"
    assert classify(503, {"error": {"code": "store_unavailable"}})[0] == "info"
    assert classify(502, None)[0] == "info"
