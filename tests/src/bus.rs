//! A vendor bus for tests that can refuse every event and come back, with the relay's dead-letter
//! queue beside it: in memory, or in the local emulator a bus of its own (EventBridge refuses every
//! `PutEvents` while it does not exist) whose events a rule copies into a queue, and a real SQS
//! dead-letter queue.

use lever_bridge::events::{Bus, EventBridgeSink, InMemoryEvents, VendorEvent};
use lever_bridge::relay::dead_letters::{DeadLetterQueue, Replayer};
use serde_json::json;
use std::sync::{Arc, Mutex};

pub enum TestBus {
    Memory {
        bus: Arc<InMemoryEvents>,
        dead_letters: Arc<DeadLetterQueue>,
    },
    Emulated {
        name: String,
        events: aws_sdk_eventbridge::Client,
        sqs: aws_sdk_sqs::Client,
        /// The queue the bus's rule copies its events into.
        arrivals: String,
        dead_letters: Arc<DeadLetterQueue>,
        /// The dead-letter queue's URL.
        dead_letter_url: String,
        read: Mutex<Vec<VendorEvent>>,
    },
}

impl TestBus {
    /// An in-memory bus, up.
    pub fn memory() -> TestBus {
        TestBus::Memory {
            bus: Arc::new(InMemoryEvents::default()),
            dead_letters: Arc::new(DeadLetterQueue::memory()),
        }
    }

    /// A bus of its own in the emulator, down until [`TestBus::set_up`] makes it.
    pub async fn emulated() -> TestBus {
        let aws = crate::aws().await;
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let name = crate::unique("bus");
        let queue = |n: String| {
            let sqs = sqs.clone();
            async move {
                sqs.create_queue()
                    .queue_name(n)
                    .send()
                    .await
                    .expect("queue")
                    .queue_url
                    .expect("queue url")
            }
        };
        let arrivals = queue(format!("{name}-arrivals")).await;
        let dead_letter_url = queue(format!("{name}-dead-letters")).await;
        TestBus::Emulated {
            events: aws_sdk_eventbridge::Client::new(&aws),
            dead_letters: Arc::new(DeadLetterQueue::Sqs {
                client: sqs.clone(),
                url: dead_letter_url.clone(),
            }),
            sqs,
            name,
            arrivals,
            dead_letter_url,
            read: Mutex::default(),
        }
    }

    /// What the relay and a replay publish to.
    pub fn sink(&self) -> Bus {
        match self {
            TestBus::Memory { bus, .. } => Bus::Memory(bus.clone()),
            TestBus::Emulated { name, events, .. } => {
                Bus::EventBridge(EventBridgeSink::new(events.clone(), name))
            }
        }
    }

    pub fn dead_letters(&self) -> Arc<DeadLetterQueue> {
        match self {
            TestBus::Memory { dead_letters, .. } | TestBus::Emulated { dead_letters, .. } => {
                dead_letters.clone()
            }
        }
    }

    /// The admin route's replayer over this bus and queue.
    pub fn replayer(&self) -> Arc<Replayer> {
        Arc::new(Replayer {
            queue: self.dead_letters(),
            bus: self.sink(),
        })
    }

    /// Down: every event refused (the emulated bus deleted, its rule with it).
    pub async fn set_down(&self) {
        match self {
            TestBus::Memory { bus, .. } => bus.set_down(true),
            TestBus::Emulated { name, events, .. } => {
                let _ = events.delete_event_bus().name(name).send().await;
            }
        }
    }

    /// Up: the emulated bus (made again) and its rule into the arrivals queue.
    pub async fn set_up(&self) {
        match self {
            TestBus::Memory { bus, .. } => bus.set_down(false),
            TestBus::Emulated {
                name,
                events,
                sqs,
                arrivals,
                ..
            } => {
                events
                    .create_event_bus()
                    .name(name)
                    .send()
                    .await
                    .expect("event bus");
                let arn = sqs
                    .get_queue_attributes()
                    .queue_url(arrivals)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .send()
                    .await
                    .expect("queue arn")
                    .attributes()
                    .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
                    .cloned()
                    .expect("queue arn");
                let rule = format!("{name}-rule");
                events
                    .put_rule()
                    .name(&rule)
                    .event_bus_name(name)
                    .event_pattern(json!({"source": [lever_bridge::events::SOURCE]}).to_string())
                    .send()
                    .await
                    .expect("rule");
                events
                    .put_targets()
                    .rule(&rule)
                    .event_bus_name(name)
                    .targets(
                        aws_sdk_eventbridge::types::Target::builder()
                            .id("arrivals")
                            .arn(arn)
                            .build()
                            .expect("target"),
                    )
                    .send()
                    .await
                    .expect("target");
            }
        }
    }

    /// Every event that reached the bus so far, in order.
    pub async fn arrived(&self) -> Vec<VendorEvent> {
        match self {
            TestBus::Memory { bus, .. } => bus.events(),
            TestBus::Emulated {
                sqs,
                arrivals,
                read,
                ..
            } => {
                loop {
                    let out = sqs
                        .receive_message()
                        .queue_url(arrivals)
                        .max_number_of_messages(10)
                        .send()
                        .await
                        .expect("receive");
                    if out.messages().is_empty() {
                        break;
                    }
                    for m in out.messages() {
                        let envelope: serde_json::Value =
                            serde_json::from_str(m.body().unwrap_or("{}")).expect("an event");
                        let event: VendorEvent = serde_json::from_value(envelope["detail"].clone())
                            .expect("a vendor event");
                        crate::contract::check_event(&event);
                        read.lock().unwrap().push(event);
                        sqs.delete_message()
                            .queue_url(arrivals)
                            .receipt_handle(m.receipt_handle().unwrap_or_default())
                            .send()
                            .await
                            .expect("delete");
                    }
                }
                read.lock().unwrap().clone()
            }
        }
    }

    /// The dead-letter queue's URL (the emulated one).
    pub fn dead_letter_url(&self) -> Option<&str> {
        match self {
            TestBus::Memory { .. } => None,
            TestBus::Emulated {
                dead_letter_url, ..
            } => Some(dead_letter_url),
        }
    }
}
