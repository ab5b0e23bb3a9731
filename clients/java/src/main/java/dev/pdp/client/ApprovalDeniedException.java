package dev.pdp.client;

/**
 * {@link PdpClient#waitForApproval}'s answer when the approval was denied
 * (state {@code denied}, with the reviewer and comment) or expired undecided
 * ({@code expired}).
 */
public class ApprovalDeniedException extends PdpException {
  private static final long serialVersionUID = 1L;

  private final transient ApprovalResult approval;

  public ApprovalDeniedException(ApprovalResult approval) {
    super(
        "approval " + approval.approvalId() + " was " + approval.state()
            + (approval.reviewer().isEmpty() ? "" : " by " + approval.reviewer())
            + (approval.comment().isEmpty() ? "" : ": " + approval.comment()));
    this.approval = approval;
  }

  public ApprovalResult approval() {
    return approval;
  }
}
