"""The Data panel's class counts: the rows (pure), and the table drawing them."""

from core.data.dataset import DatasetReport
from gui.class_counts_table import COUNT_ROLE, ClassCountsTable, class_count_rows, split_counts


def report(counts: dict[str, int]) -> DatasetReport:
    return DatasetReport("/data", list(counts), counts, [], None, None, [], None)


def test_a_split_keeps_one_image_of_each_side_when_it_can():
    assert split_counts(10, 0.2) == (8, 2)
    assert split_counts(2, 0.01) == (1, 1)  # never no validation image of a class with two
    assert split_counts(2, 0.99) == (1, 1)  # never no training image either
    assert split_counts(1, 0.5) == (1, 0) and split_counts(0, 0.5) == (0, 0)


def test_rows_list_the_classes_of_both_folders_and_split_when_asked():
    train, val = report({"cat": 10, "dog": 4}), report({"dog": 2, "fox": 3})
    assert class_count_rows(train, val, None) == [("cat", 10, None), ("dog", 4, 2), ("fox", None, 3)]
    assert class_count_rows(train, None, 0.25) == [("cat", 8, 2), ("dog", 3, 1)]
    assert class_count_rows(None, val, None) == [] and class_count_rows(report({}), val, None) == []


def test_the_table_draws_each_count_as_a_share_of_the_largest(qtbot):
    table = ClassCountsTable()
    qtbot.addWidget(table)
    table.show_counts(report({"cat": 10, "dog": 5}), None, 0.2)
    assert table.horizontalHeaderItem(2).text() == "Val (split)"
    assert [table.item(row, 1).text() for row in range(2)] == ["8", "4"]
    assert table.item(0, 1).data(COUNT_ROLE) == 1.0 and table.item(1, 1).data(COUNT_ROLE) == 0.5
    table.show_counts(report({"cat": 10}), report({"dog": 3}), None)
    assert table.horizontalHeaderItem(2).text() == "Validation"
    assert table.item(0, 2).text() == "-" and table.item(0, 2).data(COUNT_ROLE) is None
