// A borrowed session cannot outlive the reference it was borrowed from.
use sesscache::core::{ProtocolVersion, SessionBuilder, SessionRef};

fn main() {
    let dangling: SessionRef<'_>;
    {
        let owned = SessionBuilder::new(ProtocolVersion::TLS1_2, 0).build();
        dangling = owned.borrowed();
    }
    println!("{:?}", dangling.time());
}
