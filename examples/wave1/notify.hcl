# Tell people what happens overnight. The agent POSTs a JSON event when a
# migration is migrated (its domain defined), fails, stalls at the
# converter, or drifts from what state recorded; undelivered events wait in
# .hyperagent/notify/outbox and are retried until the receiver answers 2xx.

variable "ops_webhook_secret" {
  description = "Key of the HMAC-SHA256 signature the operations endpoint checks"
  type        = string
  sensitive   = true
}

variable "chat_webhook_url" {
  description = "The team channel's incoming webhook URL: a credential"
  type        = string
  sensitive   = true
}

# Every event, as versioned JSON, signed (X-Hyperagent-Signature).
notify "webhook" "ops" {
  url    = "https://ops.example.com/hooks/hyperagent"
  secret = var.ops_webhook_secret
}

# What needs a person, as one line of text in the channel.
notify "webhook" "chat" {
  url    = var.chat_webhook_url
  events = ["failed", "stalled"]
  format = "slack"
}
