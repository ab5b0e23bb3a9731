package dev.pdp.client;

/** A webhook delivery that is not authentic, or too old or from the future; the message says which. */
public class WebhookVerificationException extends PdpException {
  private static final long serialVersionUID = 1L;

  public WebhookVerificationException(String reason) {
    super("webhook not verified: " + reason);
  }
}
