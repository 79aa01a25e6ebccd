//! The game's catalog assets (`*.catalog.json`, `*.achievements.json`): any file is read or refused with a
//! typed error, never a panic; a catalog that is read is valid, and re-serializes to one that reads back equal.
#![no_main]

use amazon_rewards_protocol::catalog::{
    AchievementCatalogFile, ItemCatalogFile, validate_achievements, validate_offers,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(catalog) = ItemCatalogFile::parse(data) {
        assert!(validate_offers(&catalog.items, &catalog.offers).is_ok());
        let again = ItemCatalogFile::parse(&serde_json::to_vec(&catalog).unwrap()).unwrap();
        assert_eq!(again, catalog);
    }
    if let Ok(catalog) = AchievementCatalogFile::parse(data) {
        assert!(validate_achievements(&catalog.achievements).is_ok());
        let again = AchievementCatalogFile::parse(&serde_json::to_vec(&catalog).unwrap()).unwrap();
        assert_eq!(again, catalog);
    }
});
