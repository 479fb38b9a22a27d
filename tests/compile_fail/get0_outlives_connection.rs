// A session borrowed from a connection (SSL_get0_session) cannot outlive the connection.
use sesscache::ctx::{Context, ContextConfig, Role};

fn main() {
    let ctx = Context::new(ContextConfig::default());
    let borrowed;
    {
        let conn = ctx.new_connection(Role::Client);
        borrowed = conn.session();
    }
    println!("{:?}", borrowed.map(|s| s.time()));
}
