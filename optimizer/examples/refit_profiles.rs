//! Prints the re-fitted paper profiles in the smiless profile format (the content of
//! `optimizer/profiles/paper.json`). See `optimizer/src/refit.rs` for the method and the citation.
fn main() -> Result<(), serde_json::Error> {
    println!(
        "{}",
        serde_json::to_string_pretty(&optimizer::refit::paper_profiles())?
    );
    Ok(())
}
