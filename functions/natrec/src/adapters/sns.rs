//! SNS adapter: notices sent outside the state machine (the sweeper's).

use async_trait::async_trait;
use aws_sdk_sns::Client;

use crate::error::{RecorderError, Result};
use crate::ports::Notifier;

#[derive(Clone)]
pub struct Sns {
    client: Client,
    topic_arn: String,
}

impl Sns {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl Notifier for Sns {
    async fn publish(&self, subject: &str, message: &str) -> Result<()> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| RecorderError::from_sdk("SNS", "Publish", &e))
    }
}
