//! The public calls both adapters' `CopyManager` share, written once.
//!
//! copyman-sync's `CopyManager` blocks and copyman-async's awaits; otherwise their calls are the
//! same: start (with options, or through a builder that takes receivers unboxed), run, reconcile,
//! finish, abort and the accessors, each one [`CopyRun`](crate::run::CopyRun) call carried out by
//! the adapter's drive loop. This macro, [`copy_api!`](crate::copy_api), writes them once; each
//! adapter expands it in its `copy` module, next to the `CopyManager` it completes.

/// Expands, in an adapter's `copy` module, to `CopyManager`'s public calls and its
/// `CopyBuilder`.
///
/// Invoked bare in the blocking adapter, or as `copy_api!(async await)` in the async one (each
/// call of the adapter's drive loop then awaited), as
/// [`connection_glue!`](crate::connection_glue) is.
/// The module must define `CopyManager<'a>` with a `core: CopyRun` field, its constructor
/// `start_boxed(Box<dyn Producer>, Vec<Box<dyn Receiver>>, Options)` and its drive loop
/// `drive(&mut self, poll) -> T`, and import `Producer`, `Receiver`, `Options`, `CopyFail`,
/// `Summary`, `ReceiverId`, `ReconcileError` and `CopyRun`.
#[macro_export]
#[doc(hidden)]
macro_rules! copy_api {
    ($($async:ident $await:ident)?) => {
        impl<'a> CopyManager<'a> {
            /// Starts a copy with the default [`Options`] (`__enter__` in py-postgresql's
            /// copyman): every receiver's COPY, then the producer's.
            ///
            /// # Errors
            /// If any endpoint cannot start, those started are failed and [`CopyFail`] says which
            /// could not start.
            pub $($async)? fn start(
                producer: impl Producer + 'a,
                receivers: Vec<Box<dyn Receiver + 'a>>,
            ) -> Result<Self, CopyFail> {
                Self::start_boxed(Box::new(producer), receivers, Options::default())$(.$await)?
            }

            /// Starts a copy with `options`; see [`CopyManager::start`].
            ///
            /// # Errors
            /// As [`CopyManager::start`].
            pub $($async)? fn start_with(
                producer: impl Producer + 'a,
                receivers: Vec<Box<dyn Receiver + 'a>>,
                options: Options,
            ) -> Result<Self, CopyFail> {
                Self::start_boxed(Box::new(producer), receivers, options)$(.$await)?
            }

            /// Runs the copy to its end and finishes it (`run()` in py-postgresql's copyman): a
            /// fault fails the whole copy, unless the options' keep-going policy lets the
            /// survivors of a receiver fault complete ([`Options::with_keep_going`]; each
            /// receiver's outcome is in the summary).
            ///
            /// # Errors
            /// [`CopyFail`] when anything went wrong; no receiver's COPY is completed then,
            /// unless a receiver refused its completion after others' were accepted (see "All or
            /// nothing across destinations" on [`CopyManager`]).
            pub $($async)? fn run(mut self) -> Result<Summary, CopyFail> {
                self.drive(CopyRun::poll_run)$(.$await)?
            }

            /// Lets a faulted receiver rejoin: it first transmits what it still owes. Progress
            /// and faults of other receivers that come meanwhile are kept for the progress
            /// iterator or stream.
            ///
            /// # Errors
            /// [`ReconcileError::Refused`] when the manager refuses (the receiver did not fault,
            /// data went by while it was out, or its server ended its COPY: an error there, a
            /// lost connection); [`ReconcileError::Fault`] when its transmit
            /// fails again (it stays out).
            pub $($async)? fn reconcile(
                &mut self,
                receiver: ReceiverId,
            ) -> Result<(), ReconcileError> {
                self.core.reconcile(receiver)?;
                self.drive(|run| run.poll_reconciled(receiver))$(.$await)?
            }

            /// Completes the copy (`__exit__` in py-postgresql's copyman): succeeds only if the
            /// producer reached its end, a receiver is left and every receiver left completes
            /// with the producer's row count. A receiver that faulted during the copy and was not
            /// reconciled is not left: it holds nothing of the copy, and the [`Summary`] says it
            /// `Faulted` ([`Summary::all_completed`] tells whether the copy reached every
            /// receiver). Iterating on past a receiver fault (without `reconcile`) is going on
            /// without that receiver, whatever the [`Options`]: to keep a copy all or nothing,
            /// `abort` at the fault instead (`ends_copy` says which faults `run` stops at).
            ///
            /// # Errors
            /// [`CopyFail`] otherwise; every receiver's COPY is then failed and the producer
            /// cancelled.
            pub $($async)? fn finish(mut self) -> Result<Summary, CopyFail> {
                self.core.finish();
                self.drive(CopyRun::poll_finished)$(.$await)?
            }

            /// Fails the copy with `reason`: nothing is completed on any receiver.
            pub $($async)? fn abort(mut self, reason: &str) -> CopyFail {
                self.core.abort(reason);
                match self.drive(CopyRun::poll_finished)$(.$await)? {
                    Err(fail) => fail,
                    Ok(_) => unreachable!("an aborted copy fails"),
                }
            }

            /// Whether `fault`, met while iterating the copy, ends it under its [`Options`] — what
            /// `run` does with it: a producer fault always, a receiver fault unless keep-going.
            /// Iterating leaves that to the caller: the iterator goes on with the receivers
            /// still live (py-postgresql's continuation past a trapped `ReceiverFault`), and
            /// `finish` then completes those alone. A caller that wants the copy all or nothing
            /// calls `abort` at a fault for which this is `true`, as `run` does.
            pub fn ends_copy(&self, fault: &Fault) -> bool {
                self.core.manager().ends_copy(fault)
            }

            /// The receivers still in the copy (`receivers` in py-postgresql's copyman).
            pub fn live_receivers(&self) -> Vec<ReceiverId> {
                self.core.live_receivers()
            }

            /// Messages and payload bytes the producer delivered so far.
            pub fn totals(&self) -> (u64, u64) {
                self.core.totals()
            }

            /// What the copy waits for now, as a handle another thread can read while this one
            /// is blocked in the copy (a watchdog saying which endpoint a copy that stopped
            /// moving waits on): see [`UnderWay`](copyman_core::run::UnderWay).
            pub fn under_way(&self) -> ::copyman_core::run::UnderWay {
                self.core.under_way()
            }

            /// Payload bytes of the chunks receivers hold now (queued or being transmitted).
            pub fn buffered_bytes(&self) -> usize {
                self.core.buffered_bytes()
            }

            /// The most payload bytes receivers held at once: at most the window × the
            /// producer's chunk size (a statement producer's buffer size), whatever the data
            /// size. The buffer of a producer read under way is not counted.
            pub fn peak_buffered(&self) -> usize {
                self.core.peak_buffered()
            }
        }

        /// A copy being put together: its producer, its receivers and its [`Options`]; see
        /// [`CopyManager::builder`]. Receivers are added with [`to`](Self::to) (one) or
        /// [`to_all`](Self::to_all) (any iterator of them), without boxing.
        #[must_use = "a copy does nothing until it is started or run"]
        pub struct CopyBuilder<'a> {
            producer: Box<dyn Producer + 'a>,
            receivers: Vec<Box<dyn Receiver + 'a>>,
            options: Options,
        }

        impl ::std::fmt::Debug for CopyBuilder<'_> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct("CopyBuilder")
                    .field("receivers", &self.receivers.len())
                    .field("options", &self.options)
                    .finish_non_exhaustive()
            }
        }

        impl<'a> CopyBuilder<'a> {
            fn new(producer: impl Producer + 'a) -> Self {
                Self {
                    producer: Box::new(producer),
                    receivers: Vec::new(),
                    options: Options::default(),
                }
            }

            /// Adds a receiver; its [`ReceiverId`] is the order it was added in, from 0.
            pub fn to(mut self, receiver: impl Receiver + 'a) -> Self {
                self.receivers.push(Box::new(receiver));
                self
            }

            /// Adds every receiver of `receivers`, in order.
            pub fn to_all<R: Receiver + 'a>(
                mut self,
                receivers: impl IntoIterator<Item = R>,
            ) -> Self {
                self.receivers.extend(
                    receivers
                        .into_iter()
                        .map(|r| Box::new(r) as Box<dyn Receiver + 'a>),
                );
                self
            }

            /// Runs the copy with `options` (window, stall timeout, buffer size).
            pub fn options(mut self, options: Options) -> Self {
                self.options = options;
                self
            }

            /// Starts the copy, to follow its progress, reconcile and finish it; see
            /// [`CopyManager::start`].
            ///
            /// # Errors
            /// As [`CopyManager::start`].
            pub $($async)? fn start(self) -> Result<CopyManager<'a>, CopyFail> {
                CopyManager::start_boxed(self.producer, self.receivers, self.options)$(.$await)?
            }

            /// Starts and runs the copy to its end: the [`Summary`] (rows, bytes, each
            /// receiver's outcome), or the [`CopyFail`]; see [`CopyManager::run`].
            ///
            /// # Errors
            /// As [`CopyManager::start`] and [`CopyManager::run`].
            pub $($async)? fn run(self) -> Result<Summary, CopyFail> {
                self.start()$(.$await)? ?.run()$(.$await)?
            }
        }
    };
}
