//! A TCP proxy on loopback in front of a server (the test PostgreSQL), that
//! a test can cut, stall and restore: an outage of the database (refused
//! connections, or a network that swallows everything and answers nothing)
//! without stopping the server the other tests share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const UP: u8 = 0;
const CUT: u8 = 1;
const STALLED: u8 = 2;

pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    /// Bumped at each cut: every connection forwarded before it ends.
    cuts: watch::Sender<u64>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(UP));
        let (cuts, _) = watch::channel(0u64);
        let accepting = {
            let (mode, cuts) = (mode.clone(), cuts.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let mut changed = cuts.subscribe();
                    let mode = mode.clone();
                    tokio::spawn(async move {
                        match mode.load(Ordering::SeqCst) {
                            // Closed as soon as it opens.
                            CUT => return,
                            // Held open, never answered, until restored.
                            STALLED => {
                                while mode.load(Ordering::SeqCst) == STALLED {
                                    let _ = changed.changed().await;
                                }
                                drop(client);
                                return;
                            }
                            _ => {}
                        }
                        let Ok(server) = TcpStream::connect(target).await else {
                            return;
                        };
                        let (mut client, mut server) = (client, server);
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = changed.changed() => {
                                // A stall freezes the connection: nothing more
                                // passes, and it ends when the proxy is restored.
                                while mode.load(Ordering::SeqCst) == STALLED {
                                    let _ = changed.changed().await;
                                }
                            }
                        }
                    });
                }
            })
        };
        Proxy {
            port,
            mode,
            cuts,
            accepting,
        }
    }

    /// Ends every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.set(CUT);
    }

    /// Freezes every forwarded connection and holds new ones unanswered.
    pub fn stall(&self) {
        self.set(STALLED);
    }

    pub fn restore(&self) {
        self.set(UP);
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}
