//! The worker: keeps the lease table in step with the stream's shards,
//! renews its leases, takes and steals leases toward an even spread (or,
//! beside a live Java KCL 3.x leader, processes the leases it assigns), and
//! runs one consumer per held lease.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_kinesis::types::{ConsumerStatus, Shard};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::consumer::{self, Ended, Shared, Stop};
use crate::coordinator::{
    Coordination, CoordinatorTables, DEFAULT_METRICS_INTERVAL, LeaderWatch, WorkerMetricStats,
    assigns_leases,
};
use crate::lease::{Checkpoint, Lease};
use crate::processor::{Deaggregator, KplDeaggregation, RecordProcessor};
use crate::table::{LeaseTable, Outcome, Renewal, aws_error_text};
use crate::taker::{self, Observations, Plan};
use crate::{KclError, Retrieval};

/// KCL's `failoverTimeMillis` default: a lease whose counter stood still
/// this long is taken by another worker.
pub const DEFAULT_FAILOVER_TIME: Duration = Duration::from_secs(10);
/// How often the shards are listed again besides at each shard's end
/// (KCL's `shardSyncIntervalMillis` default).
const SHARD_SYNC_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest WorkerMetricStats reporting interval: KCL's leader reads
/// `lut` in whole seconds, so anything shorter only adds writes.
const METRICS_INTERVAL_MIN: Duration = Duration::from_millis(100);
/// How long a graceful shutdown waits for processors to checkpoint.
const SHUTDOWN_TIME_MAX: Duration = Duration::from_secs(30);
/// How long a fan-out consumer may take to become ACTIVE.
const CONSUMER_ACTIVE_TIME_MAX: Duration = Duration::from_secs(60);

/// Where a new application starts reading each shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    TrimHorizon,
    Latest,
}

/// How records are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrievalMode {
    /// GetRecords on a shard iterator (shared 2 MB/s per shard).
    Polling,
    /// Enhanced fan-out: a consumer named after the application,
    /// SubscribeToShard per lease.
    FanOut,
}

/// Configures a [`Worker`].
pub struct WorkerBuilder {
    application: String,
    stream: String,
    kinesis: Option<aws_sdk_kinesis::Client>,
    dynamodb: Option<aws_sdk_dynamodb::Client>,
    worker_id: Option<String>,
    initial_position: InitialPosition,
    failover_time: Duration,
    retrieval: RetrievalMode,
    max_leases: usize,
    deaggregator: Arc<dyn Deaggregator>,
    metrics_interval: Duration,
}

impl WorkerBuilder {
    /// The Kinesis client records are read with.
    pub fn kinesis(mut self, client: aws_sdk_kinesis::Client) -> Self {
        self.kinesis = Some(client);
        self
    }

    /// The DynamoDB client of the lease table (Riffle's endpoint serves it).
    pub fn dynamodb(mut self, client: aws_sdk_dynamodb::Client) -> Self {
        self.dynamodb = Some(client);
        self
    }

    /// Points both clients at one endpoint (Riffle serves Kinesis and the
    /// lease table's DynamoDB on one port).
    pub fn endpoint(mut self, url: &str) -> Self {
        self.kinesis = self.kinesis.map(|c| {
            aws_sdk_kinesis::Client::from_conf(c.config().to_builder().endpoint_url(url).build())
        });
        self.dynamodb = self.dynamodb.map(|c| {
            aws_sdk_dynamodb::Client::from_conf(c.config().to_builder().endpoint_url(url).build())
        });
        self
    }

    /// This worker's name in `leaseOwner` (a random UUID by default, as KCL).
    pub fn worker_id(mut self, id: &str) -> Self {
        self.worker_id = Some(id.to_owned());
        self
    }

    pub fn initial_position(mut self, position: InitialPosition) -> Self {
        self.initial_position = position;
        self
    }

    pub fn failover_time(mut self, time: Duration) -> Self {
        self.failover_time = time;
        self
    }

    pub fn retrieval(mut self, mode: RetrievalMode) -> Self {
        self.retrieval = mode;
        self
    }

    /// At most this many leases for this worker (KCL's `maxLeasesForWorker`)
    /// when it takes them; a KCL 3.x leader applies its own setting to what
    /// it assigns.
    pub fn max_leases(mut self, max: usize) -> Self {
        self.max_leases = max.max(1);
        self
    }

    /// How Kinesis records become user records: [`KplDeaggregation`] by
    /// default, as the Java KCL.
    pub fn deaggregator(mut self, deaggregator: Arc<dyn Deaggregator>) -> Self {
        self.deaggregator = deaggregator;
        self
    }

    /// How often this worker's WorkerMetricStats row is written for a
    /// KCL 3.x leader (KCL's `workerMetricsReporterFreqInMillis`, 30 s by
    /// default): at most the Java workers' setting, as their leader counts
    /// a worker alive for two of its own periods.
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval;
        self
    }

    pub fn build(self) -> Result<Worker, KclError> {
        let kinesis = self
            .kinesis
            .ok_or(KclError::Config("a Kinesis client is needed"))?;
        let dynamodb = self
            .dynamodb
            .ok_or(KclError::Config("a DynamoDB client is needed"))?;
        if self.failover_time < Duration::from_millis(300) {
            return Err(KclError::Config(
                "the failover time must be at least 300 ms",
            ));
        }
        if self.metrics_interval < METRICS_INTERVAL_MIN {
            return Err(KclError::Config(
                "the metrics interval must be at least 100 ms",
            ));
        }
        let worker_id = self
            .worker_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Ok(Worker {
            coordinator: CoordinatorTables::new(dynamodb.clone(), &self.application),
            metrics_interval: self.metrics_interval,
            table: Arc::new(LeaseTable::new(dynamodb, &self.application)),
            application: self.application,
            stream: self.stream,
            kinesis,
            worker_id: worker_id.into(),
            initial_position: self.initial_position,
            failover_time: self.failover_time,
            retrieval: self.retrieval,
            max_leases: self.max_leases,
            deaggregator: self.deaggregator,
        })
    }
}

/// A KCL worker of one application on one stream.
pub struct Worker {
    application: String,
    stream: String,
    kinesis: aws_sdk_kinesis::Client,
    table: Arc<LeaseTable>,
    worker_id: Arc<str>,
    initial_position: InitialPosition,
    failover_time: Duration,
    retrieval: RetrievalMode,
    max_leases: usize,
    deaggregator: Arc<dyn Deaggregator>,
    coordinator: CoordinatorTables,
    metrics_interval: Duration,
}

/// A running worker.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), KclError>>,
}

impl WorkerHandle {
    /// Graceful shutdown: each processor is asked to checkpoint, then the
    /// leases are released for other workers to take at once.
    pub async fn shutdown(self) -> Result<(), KclError> {
        let _ = self.stop.send(true);
        self.join().await
    }

    /// Waits for the worker to end on its own (an error).
    pub async fn join(self) -> Result<(), KclError> {
        self.task
            .await
            .map_err(|e| KclError::Stopped(e.to_string()))?
    }

    /// Stops at once, as a crash would: nothing is checkpointed or released,
    /// so other workers take the leases after the failover time.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// A lease this worker holds and the consumer running it.
struct Held {
    stop: watch::Sender<Stop>,
    /// Taken out to let a consumer end by itself (a lost lease).
    task: Option<JoinHandle<Ended>>,
    renewed: Instant,
    /// Bytes the consumer read since the last renewal, for the lease's
    /// `throughputKBps`, which a KCL 3.x leader balances by.
    delivered_bytes: Arc<AtomicU64>,
}

impl Drop for Held {
    /// A worker that is dropped or aborted stops its consumers with it, as
    /// a crashed process would: nothing more is processed or checkpointed.
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Worker {
    pub fn builder(application: &str, stream: &str) -> WorkerBuilder {
        WorkerBuilder {
            application: application.to_owned(),
            stream: stream.to_owned(),
            kinesis: None,
            dynamodb: None,
            worker_id: None,
            initial_position: InitialPosition::Latest,
            failover_time: DEFAULT_FAILOVER_TIME,
            retrieval: RetrievalMode::Polling,
            max_leases: usize::MAX,
            deaggregator: Arc::new(KplDeaggregation),
            metrics_interval: DEFAULT_METRICS_INTERVAL,
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Starts the worker on the runtime; `processor_for(shard_id)` makes
    /// each shard's processor.
    pub fn start<P, F>(self, processor_for: F) -> WorkerHandle
    where
        P: RecordProcessor,
        F: FnMut(&str) -> P + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(processor_for, stopped));
        WorkerHandle { stop, task }
    }

    /// Runs until `shutdown` resolves, then shuts down gracefully.
    pub async fn run_until<P, F>(
        self,
        processor_for: F,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), KclError>
    where
        P: RecordProcessor,
        F: FnMut(&str) -> P + Send + 'static,
    {
        let handle = self.start(processor_for);
        shutdown.await;
        handle.shutdown().await
    }

    async fn run<P, F>(
        self,
        mut processor_for: F,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<(), KclError>
    where
        P: RecordProcessor,
        F: FnMut(&str) -> P + Send + 'static,
    {
        self.table.ensure().await?;
        let retrieval = match self.retrieval {
            RetrievalMode::Polling => Retrieval::Polling,
            RetrievalMode::FanOut => Retrieval::FanOut {
                consumer_arn: self.register_consumer().await?,
            },
        };
        let shared = Arc::new(Shared {
            kinesis: self.kinesis.clone(),
            table: self.table.clone(),
            stream: self.stream.clone(),
            worker_id: self.worker_id.clone(),
            retrieval,
            deaggregator: self.deaggregator.clone(),
        });
        self.sync_shards().await?;
        let mut held: HashMap<String, Held> = HashMap::new();
        let mut observations = Observations::default();
        let mut coordination = Rounds::default();
        let mut renew = tokio::time::interval(self.failover_time / 3);
        let mut coordinate = tokio::time::interval(self.failover_time / 3);
        let mut report = tokio::time::interval(self.metrics_interval);
        let mut sync = tokio::time::interval(SHARD_SYNC_INTERVAL);
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = renew.tick() => self.renew(&mut held).await,
                _ = coordinate.tick() => {
                    if let Err(error) = self.coordinate(&mut coordination, &mut held, &mut observations, &shared, &mut processor_for).await {
                        tracing::warn!(%error, "taking leases");
                    }
                }
                _ = report.tick() => self.report().await,
                _ = sync.tick() => {
                    if let Err(error) = self.sync_shards().await {
                        tracing::warn!(%error, "shard sync");
                    }
                }
            }
            if self.reap(&mut held).await
                && let Err(error) = self.sync_shards().await
            {
                tracing::warn!(%error, "shard sync after a shard's end");
            }
        }
        self.shut_down(held).await;
        if let Err(error) = self.coordinator.withdraw(&self.worker_id).await {
            tracing::warn!(%error, "removing this worker's WorkerMetricStats row");
        }
        Ok(())
    }

    /// Writes this worker's WorkerMetricStats row, so a KCL 3.x leader
    /// counts it among the workers it assigns leases to.
    async fn report(&self) {
        let stats = WorkerMetricStats::default_metric(&self.worker_id, SystemTime::now());
        if let Err(error) = self.coordinator.publish(&stats).await {
            tracing::warn!(%error, "publishing WorkerMetricStats");
        }
    }

    /// One coordination round: beside a live KCL 3.x leader, start what it
    /// assigned to this worker; otherwise take and steal as KCL 2.x does,
    /// once per failover time.
    async fn coordinate<P, F>(
        &self,
        rounds: &mut Rounds,
        held: &mut HashMap<String, Held>,
        observations: &mut Observations,
        shared: &Arc<Shared>,
        processor_for: &mut F,
    ) -> Result<(), KclError>
    where
        P: RecordProcessor,
        F: FnMut(&str) -> P + Send + 'static,
    {
        let (lock, version) = self.coordinator.read().await?;
        let now = Instant::now();
        let coordination = match rounds.leader.observe(lock.as_ref(), now) {
            Some(leader) if assigns_leases(version.as_deref()) => Coordination::Assigned { leader },
            _ => Coordination::Taking,
        };
        if coordination != rounds.mode {
            tracing::info!(worker = %self.worker_id, ?coordination, "lease coordination");
            rounds.mode = coordination.clone();
        }
        match coordination {
            Coordination::Assigned { .. } => {
                self.adopt(held, observations, shared, processor_for).await
            }
            Coordination::Taking => {
                if rounds
                    .taken
                    .is_some_and(|at| now.duration_since(at) < self.failover_time)
                {
                    return Ok(());
                }
                rounds.taken = Some(now);
                self.take(held, observations, shared, processor_for).await
            }
        }
    }

    /// Starts the leases a KCL 3.x leader assigned to this worker. A lease
    /// handed over gracefully (its `checkpointOwner` is the old owner, still
    /// finishing) waits until the old owner clears it, or until its counter
    /// stood still for the failover time (the old owner died), as a Java
    /// worker waits.
    async fn adopt<P, F>(
        &self,
        held: &mut HashMap<String, Held>,
        observations: &mut Observations,
        shared: &Arc<Shared>,
        processor_for: &mut F,
    ) -> Result<(), KclError>
    where
        P: RecordProcessor,
        F: FnMut(&str) -> P + Send + 'static,
    {
        let leases = self.unfinished_leases().await?;
        let expired = observations.observe(&leases, Instant::now(), self.failover_time);
        let me = &*self.worker_id;
        for lease in leases {
            if lease.owner.as_deref() != Some(me) || held.contains_key(&lease.key) {
                continue;
            }
            let counter = match lease.checkpoint_owner.as_deref() {
                Some(old) if old != me => {
                    if !expired.contains(&lease.key) {
                        continue;
                    }
                    tracing::info!(key = %lease.key, %old, "the previous owner never finished its hand-over");
                    self.table.take(&lease, me).await?
                }
                _ => match self.table.renew(&lease.key, me, None).await? {
                    Renewal::Renewed(counter) => Some(counter),
                    Renewal::HandOff { .. } | Renewal::Lost => None,
                },
            };
            let Some(counter) = counter else { continue };
            let key = lease.key.clone();
            let mut lease = lease;
            lease.counter = counter;
            lease.checkpoint_owner = None;
            tracing::info!(%key, worker = %self.worker_id, "lease assigned by the KCL 3.x leader");
            let processor = processor_for(&key);
            held.insert(key, start_consumer(shared.clone(), lease, processor));
        }
        Ok(())
    }

    /// Renews every held lease; a lease whose renewal is refused, or that
    /// could not be renewed for the failover time, is lost. A lease a KCL
    /// 3.x leader moved gracefully is finished: its processor is asked to
    /// shut down (and checkpoint), and the lease is handed over once it has.
    async fn renew(&self, held: &mut HashMap<String, Held>) {
        let mut lost = Vec::new();
        for (key, lease) in held.iter_mut() {
            let seconds = lease.renewed.elapsed().as_secs_f64().max(0.001);
            let bytes = lease.delivered_bytes.swap(0, Ordering::Relaxed);
            let throughput_kbps = bytes as f64 / 1024.0 / seconds;
            match self
                .table
                .renew(key, &self.worker_id, Some(throughput_kbps))
                .await
            {
                Ok(Renewal::Renewed(_)) => lease.renewed = Instant::now(),
                Ok(Renewal::HandOff { to }) => {
                    lease.renewed = Instant::now();
                    if *lease.stop.borrow() == Stop::Running {
                        tracing::info!(%key, %to, worker = %self.worker_id, "graceful hand-over");
                        let _ = lease.stop.send(Stop::Shutdown);
                    }
                }
                Ok(Renewal::Lost) => lost.push(key.clone()),
                Err(error) => {
                    tracing::warn!(%key, %error, "renewing a lease");
                    if lease.renewed.elapsed() > self.failover_time {
                        lost.push(key.clone());
                    }
                }
            }
        }
        for key in lost {
            tracing::info!(%key, worker = %self.worker_id, "lease lost");
            if let Some(mut lease) = held.remove(&key) {
                let _ = lease.stop.send(Stop::LeaseLost);
                // Detached: it calls `lease_lost` and ends by itself.
                drop(lease.task.take());
            }
        }
    }

    /// The lease table's leases whose shards are not read to their end.
    async fn unfinished_leases(&self) -> Result<Vec<Lease>, KclError> {
        let leases = self.table.list().await?;
        Ok(leases.into_iter().filter(|l| !l.is_finished()).collect())
    }

    /// One taking round: expired leases first, else one stolen.
    async fn take<P, F>(
        &self,
        held: &mut HashMap<String, Held>,
        observations: &mut Observations,
        shared: &Arc<Shared>,
        processor_for: &mut F,
    ) -> Result<(), KclError>
    where
        P: RecordProcessor,
        F: FnMut(&str) -> P + Send + 'static,
    {
        let leases = self.unfinished_leases().await?;
        let mut expired = observations.observe(&leases, Instant::now(), self.failover_time);
        // Ours in the table but not running here (an earlier run of this id).
        expired.extend(
            leases
                .iter()
                .filter(|l| {
                    l.owner.as_deref() == Some(&*self.worker_id) && !held.contains_key(&l.key)
                })
                .map(|l| l.key.clone()),
        );
        expired.retain(|key| !held.contains_key(key));
        expired.dedup();
        let keys = match taker::plan(
            &self.worker_id,
            &leases,
            &expired,
            held.len(),
            self.max_leases,
        ) {
            Plan::Nothing => return Ok(()),
            Plan::Take(keys) | Plan::Steal(keys) => keys,
        };
        for key in keys {
            let Some(lease) = leases.iter().find(|l| l.key == key) else {
                continue;
            };
            if let Some(counter) = self.table.take(lease, &self.worker_id).await? {
                let mut lease = lease.clone();
                lease.counter = counter;
                lease.owner = Some(self.worker_id.to_string());
                tracing::info!(%key, worker = %self.worker_id, "lease taken");
                let processor = processor_for(&key);
                held.insert(key, start_consumer(shared.clone(), lease, processor));
            }
        }
        Ok(())
    }

    /// Collects consumers that ended; true when a shard reached its end
    /// (its children's leases are then due).
    async fn reap(&self, held: &mut HashMap<String, Held>) -> bool {
        let done: Vec<String> = held
            .iter()
            .filter(|(_, h)| h.task.as_ref().is_none_or(JoinHandle::is_finished))
            .map(|(k, _)| k.clone())
            .collect();
        let mut shard_ended = false;
        for key in done {
            let Some(task) = held.remove(&key).and_then(|mut h| h.task.take()) else {
                continue;
            };
            let ended = task
                .await
                .unwrap_or_else(|e| Ended::Failed(KclError::Stopped(e.to_string())));
            match ended {
                Ended::ShardEnd { checkpointed } => {
                    shard_ended |= checkpointed;
                    if !checkpointed {
                        tracing::warn!(%key, "the processor did not checkpoint SHARD_END: the children wait");
                    }
                }
                Ended::Failed(error) => tracing::warn!(%key, %error, "a shard consumer failed"),
                Ended::LeaseLost | Ended::Shutdown => {}
            }
            // A finished lease is left for KCL's cleanup; a failed one is
            // freed for any worker to retry; a gracefully moved one is
            // handed to its new owner.
            if let Err(error) = self.table.release(&key, &self.worker_id).await {
                tracing::warn!(%key, %error, "releasing a lease");
            }
        }
        shard_ended
    }

    async fn shut_down(&self, held: HashMap<String, Held>) {
        for lease in held.values() {
            let _ = lease.stop.send(Stop::Shutdown);
        }
        for (key, mut lease) in held {
            if let Some(task) = lease.task.as_mut()
                && tokio::time::timeout(SHUTDOWN_TIME_MAX, task).await.is_err()
            {
                tracing::warn!(%key, "a processor did not finish its shutdown in time");
            }
            match self.table.release(&key, &self.worker_id).await {
                Ok(Outcome::Done | Outcome::Lost) => {}
                Err(error) => tracing::warn!(%key, %error, "releasing a lease"),
            }
        }
    }

    /// Shard sync: a lease for every shard that should have one. A new
    /// application starts from the oldest shards (TRIM_HORIZON) or the open
    /// ones (LATEST); later, a child gets its lease, from TRIM_HORIZON, once
    /// a parent's lease is at SHARD_END.
    async fn sync_shards(&self) -> Result<(), KclError> {
        let shards = self.list_shards().await?;
        let leases: HashMap<String, Lease> = self
            .table
            .list()
            .await?
            .into_iter()
            .map(|l| (l.key.clone(), l))
            .collect();
        let ids: BTreeSet<&str> = shards.iter().map(|s| s.shard_id()).collect();
        for shard in &shards {
            if leases.contains_key(shard.shard_id()) {
                continue;
            }
            let parents = parents_of(shard);
            let checkpoint = if leases.is_empty() {
                match self.initial_position {
                    InitialPosition::TrimHorizon
                        if parents.iter().all(|p| !ids.contains(p.as_str())) =>
                    {
                        Checkpoint::TrimHorizon
                    }
                    InitialPosition::Latest
                        if shard
                            .sequence_number_range()
                            .and_then(|r| r.ending_sequence_number())
                            .is_none() =>
                    {
                        Checkpoint::Latest
                    }
                    _ => continue,
                }
            } else if parents
                .iter()
                .any(|p| leases.get(p).is_some_and(Lease::is_finished))
            {
                Checkpoint::TrimHorizon
            } else {
                continue;
            };
            let mut lease = Lease::new(shard.shard_id(), checkpoint);
            lease.parent_shard_ids = parents;
            lease.hash_key_range = shard.hash_key_range().map(|r| {
                (
                    r.starting_hash_key().to_owned(),
                    r.ending_hash_key().to_owned(),
                )
            });
            self.table.create(&lease).await?;
        }
        Ok(())
    }

    async fn list_shards(&self) -> Result<Vec<Shard>, KclError> {
        let mut shards = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let request = match next.take() {
                Some(token) => self.kinesis.list_shards().next_token(token),
                None => self.kinesis.list_shards().stream_name(&self.stream),
            };
            let page = request
                .send()
                .await
                .map_err(|e| KclError::Kinesis(aws_error_text(&e)))?;
            shards.extend(page.shards.unwrap_or_default());
            match page.next_token {
                Some(token) => next = Some(token),
                None => return Ok(shards),
            }
        }
    }

    /// Registers (or finds) the fan-out consumer named after the
    /// application, as KCL names it, and waits until it is ACTIVE.
    async fn register_consumer(&self) -> Result<String, KclError> {
        let kinesis_error =
            |e: &(dyn std::error::Error + 'static)| KclError::Kinesis(aws_error_text(e));
        let summary = self
            .kinesis
            .describe_stream_summary()
            .stream_name(&self.stream)
            .send()
            .await
            .map_err(|e| kinesis_error(&e))?;
        let stream_arn = summary
            .stream_description_summary
            .map(|s| s.stream_arn)
            .ok_or_else(|| KclError::Kinesis("DescribeStreamSummary gave no ARN".into()))?;
        let registered = self
            .kinesis
            .register_stream_consumer()
            .stream_arn(&stream_arn)
            .consumer_name(&self.application)
            .send()
            .await;
        if let Err(error) = &registered
            && !matches!(error.as_service_error(), Some(e) if e.is_resource_in_use_exception())
        {
            return Err(kinesis_error(error));
        }
        let deadline = Instant::now() + CONSUMER_ACTIVE_TIME_MAX;
        loop {
            let described = self
                .kinesis
                .describe_stream_consumer()
                .stream_arn(&stream_arn)
                .consumer_name(&self.application)
                .send()
                .await
                .map_err(|e| kinesis_error(&e))?;
            if let Some(consumer) = described.consumer_description
                && consumer.consumer_status == ConsumerStatus::Active
            {
                return Ok(consumer.consumer_arn);
            }
            if Instant::now() > deadline {
                return Err(KclError::Kinesis(
                    "the fan-out consumer never became ACTIVE".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The coordination rounds' memory.
#[derive(Debug)]
struct Rounds {
    leader: LeaderWatch,
    mode: Coordination,
    /// When the KCL 2.x taker last ran.
    taken: Option<Instant>,
}

impl Default for Rounds {
    fn default() -> Rounds {
        Rounds {
            leader: LeaderWatch::default(),
            mode: Coordination::Taking,
            taken: None,
        }
    }
}

fn parents_of(shard: &Shard) -> BTreeSet<String> {
    shard
        .parent_shard_id()
        .into_iter()
        .chain(shard.adjacent_parent_shard_id())
        .map(str::to_owned)
        .collect()
}

fn start_consumer<P: RecordProcessor>(shared: Arc<Shared>, lease: Lease, processor: P) -> Held {
    let (stop, stopping) = watch::channel(Stop::Running);
    let delivered_bytes = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(consumer::run(
        shared,
        lease,
        processor,
        stopping,
        delivered_bytes.clone(),
    ));
    Held {
        stop,
        task: Some(task),
        renewed: Instant::now(),
        delivered_bytes,
    }
}
