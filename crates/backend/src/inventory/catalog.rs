//! The item catalog on the server: the same file the game ships (`*.catalog.json`, the protocol crate's
//! [`ItemCatalogFile`], validated the same way), loaded at start with `--catalog`. It says what each SKU grants;
//! an entitlement whose SKU it does not name is held (see [`super::held`]), never granted or reported.

use std::path::Path;

use amazon_rewards_protocol::catalog::{ItemCatalogFile, ItemStack};

/// The catalog the backend grants by.
#[derive(Debug, Clone, Default)]
pub struct ServerCatalog {
    file: ItemCatalogFile,
}

impl ServerCatalog {
    /// Reads and validates the catalog at `path`; the error says what is wrong, for the operator at start.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read the catalog {}: {e}", path.display()))?;
        Self::parse(&bytes).map_err(|e| format!("the catalog {} is refused: {e}", path.display()))
    }

    /// A catalog from the file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, amazon_rewards_protocol::catalog::CatalogError> {
        Ok(Self { file: ItemCatalogFile::parse(bytes)? })
    }

    /// What `sku` grants, if the catalog names it.
    pub fn offer(&self, sku: &str) -> Option<&[ItemStack]> {
        self.file.offers.get(sku).map(Vec::as_slice)
    }

    /// Whether `item` exists (a spend of anything else is refused).
    pub fn has_item(&self, item: &str) -> bool {
        self.file.items.contains_key(item)
    }
}
