"""Apps written for dash_database 1.0 keep working, without 1.0's bugs.

Each bug of 1.0 has a test here or in the contract suite that fails on 1.0's behaviour:
keys joined as f"{user_id}_{key_name}" (test_isolation), listing and delete-all by prefix
(test_isolation), full scans (tests/backends/test_sqlite.py query plans), a per-process
':memory:' default (test_default_location_is_shared_between_processes), a hang after fork
(test_instance_created_before_fork_works_in_child_and_parent) and no expiry (test_expiry).
"""

from __future__ import annotations

from dash_database import DashDatabase


def test_the_1_0_readme_usage_runs_unchanged() -> None:
    dash_db = DashDatabase(db_location=None)
    dash_db.store_user_value(user_id=123, key_name="account_id", value=46887)
    dash_db.store_user_value(user_id=123, key_name="favorite_animal", value="monkey")
    assert ["account_id", "favorite_animal"] == dash_db.list_stored_user_keys(123)
    dash_db.store_user_value(user_id=456, key_name="account_id", value=87874)
    dash_db.store_user_value(456, "favorite_color", "green")
    assert ["account_id", "favorite_color"] == dash_db.list_stored_user_keys(456)
    assert "monkey" == dash_db.get_user_value(user_id=123, key_name="favorite_animal")
    dash_db.delete_user_value(user_id=123, key_name="favorite_animal", if_not_exists="ignore")
    dash_db.delete_all_user_values(456)
    assert ["account_id"] == dash_db.list_stored_user_keys(123)
    assert [] == dash_db.list_stored_user_keys(456)
    dash_db.close()


def test_users_whose_ids_share_a_prefix_do_not_see_each_others_keys() -> None:
    with DashDatabase(":memory:") as dash_db:
        dash_db.store_user_value(1, "a", "one")
        dash_db.store_user_value(11, "b", "eleven")
        dash_db.store_user_value(12, "c", "twelve")

        assert ["a"] == dash_db.list_stored_user_keys(1)
        assert 1 == dash_db.delete_all_user_values(1)
        assert ["b"] == dash_db.list_stored_user_keys(11)
        assert ["c"] == dash_db.list_stored_user_keys(12)
