//! The push scenarios against a SCIM implementation that is not ours: scim2-server from PyPI,
//! which `scripts/test` installs into .venv and starts on 127.0.0.1. Each test gets its own
//! tenant. With CI=true a missing server fails the run.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::scenarios;
use common::world::World;
use common::TestDb;

/// The server's base URL and token, or `None` (with a note) outside CI.
fn scim2_server() -> Option<(String, String)> {
    match (
        std::env::var("ROSTERD_TEST_SCIM2_URL"),
        std::env::var("ROSTERD_TEST_SCIM2_TOKEN"),
    ) {
        (Ok(url), Ok(token)) => {
            std::env::set_var("ROSTERD_TEST_SCIM2_TOKEN", &token);
            Some((url, token))
        }
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but ROSTERD_TEST_SCIM2_URL is not set: run the suite with scripts/test"
            );
            eprintln!(
                "ROSTERD_TEST_SCIM2_URL is not set: skipping the scim2-server interop scenarios"
            );
            None
        }
    }
}

async fn world(db: TestDb) -> Option<World> {
    let (url, token) = scim2_server()?;
    Some(World::with_scim2(db, 150, &url, &token).await)
}

on_both_backends!(
    a_sync_with_nothing_changed_sends_no_write,
    changes_are_pushed_as_deltas,
    a_mass_removal_is_held_until_approved,
    a_reconcile_repairs_drift,
    one_reconcile_heals_a_target_whose_users_were_all_created_again,
    a_reconcile_removes_duplicates_and_ids_that_are_no_users,
    case_variant_user_names_are_found_with_the_default_lookup,
    verification_heals_recreated_users_after_a_change_in_one_plain_sync,
    verification_rebuilds_a_target_restarted_empty_in_one_plain_sync,
    verification_names_back_a_group_renamed_by_hand,
);

async fn a_sync_with_nothing_changed_sends_no_write(db: TestDb) {
    if let Some(world) = world(db).await {
        scenarios::nothing_changed_sends_no_write(&world).await;
    }
}

async fn changes_are_pushed_as_deltas(db: TestDb) {
    if let Some(mut world) = world(db).await {
        scenarios::changes_are_pushed_as_deltas(&mut world).await;
    }
}

async fn a_mass_removal_is_held_until_approved(db: TestDb) {
    if let Some(mut world) = world(db).await {
        scenarios::a_mass_removal_is_held_until_approved(&mut world).await;
    }
}

async fn a_reconcile_repairs_drift(db: TestDb) {
    if let Some(world) = world(db).await {
        scenarios::a_reconcile_repairs_drift(&world).await;
    }
}

/// Scenario 2: scim2-server keeps a deleted user's id in its groups.
async fn one_reconcile_heals_a_target_whose_users_were_all_created_again(db: TestDb) {
    if let Some(world) = world(db).await {
        scenarios::one_reconcile_heals_recreated_users(&world).await;
    }
}

/// Scenario 3: scim2-server accepts ids that are no user's, and keeps a member twice when a
/// member list is replaced with one.
async fn a_reconcile_removes_duplicates_and_ids_that_are_no_users(db: TestDb) {
    if let Some(world) = world(db).await {
        scenarios::a_reconcile_removes_duplicates_and_unknown_ids(&world).await;
    }
}

/// Scenario 5: scim2-server's `/Schemas` says userName is not caseExact, so rosterd looks the
/// few new workers up by filter, whose case then does not matter.
async fn case_variant_user_names_are_found_with_the_default_lookup(db: TestDb) {
    if let Some(mut world) = world(db).await {
        scenarios::case_variant_user_names_are_found(&mut world).await;
        let store = world.store().await;
        let learned = store.target_lookups().await.unwrap();
        store.close().await;
        let app = &learned[common::world::TARGET];
        assert_eq!((app.case_exact, app.source.as_str()), (false, "schemas"));
    }
}

async fn verification_heals_recreated_users_after_a_change_in_one_plain_sync(db: TestDb) {
    if let Some(mut world) = world(db).await {
        scenarios::recreated_users_then_a_change_heal_in_one_plain_sync(&mut world).await;
    }
}

async fn verification_rebuilds_a_target_restarted_empty_in_one_plain_sync(db: TestDb) {
    if let Some(world) = world(db).await {
        scenarios::a_target_restarted_empty_is_rebuilt_in_one_plain_sync(&world).await;
    }
}

async fn verification_names_back_a_group_renamed_by_hand(db: TestDb) {
    if let Some(world) = world(db).await {
        scenarios::a_group_renamed_by_hand_is_named_back(&world).await;
    }
}
