import type { ComponentType } from "react";
import { AccessChecker } from "./AccessChecker.js";
import { ChannelPartners } from "./ChannelPartners.js";
import { Content } from "./Content.js";
import { PartnerAccounts } from "./PartnerAccounts.js";
import { PartnerShareAccess } from "./PartnerShareAccess.js";

/**
 * The console's screens, in navigation order. To add one: write
 * screens/<Name>.tsx exporting a component (it gets the session from
 * useSession(): actor, caller, transport, readOnly), and add an entry here;
 * its route is #/<path>. Write buttons use components/WriteButton.
 */
export interface Screen {
  /** The hash route, #/<path>. */
  readonly path: string;
  /** Its name in the navigation. */
  readonly title: string;
  readonly component: ComponentType;
}

export const SCREENS: readonly Screen[] = [
  { path: "content", title: "Content", component: Content },
  { path: "partners", title: "Partner share access", component: PartnerShareAccess },
  { path: "channel-partners", title: "Channel partners", component: ChannelPartners },
  { path: "partner-accounts", title: "Partner accounts", component: PartnerAccounts },
  { path: "access", title: "Access checker", component: AccessChecker },
];
