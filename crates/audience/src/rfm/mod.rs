//! RFM: recency, frequency and monetary value per buyer, scores and segment names.

pub mod score;
pub mod summary;
