"""The web page's hosting in template.yaml: a private bucket that only the stack's CloudFront
distribution reads (origin access control), HTTPS only, the security headers the local server
sends too (concierge_cli.local.web), the Cognito hosted UI's code flow back to the page, and the
API's CORS naming the page's domain."""

from __future__ import annotations

from typing import Any

from concierge_cli.local.web import CSP_DIRECTIVES, HSTS, SECURITY_HEADERS, parse_policy
from infra.tools import REPO_ROOT

PAGE_ORIGIN = "https://${WebDistribution.DomainName}"


def resource(template: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"][name]
    return found


def test_the_bucket_is_private_encrypted_and_versioned(template: dict[str, Any]) -> None:
    # Given the web bucket
    bucket = resource(template, "WebBucket")["Properties"]

    # When its access settings are read
    blocks = bucket["PublicAccessBlockConfiguration"]

    # Then nothing of it is public, ACLs are off, it is encrypted and keeps old versions
    assert blocks == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"


def test_only_this_distribution_reads_the_bucket_and_only_over_tls(
    template: dict[str, Any],
) -> None:
    # Given the web bucket's policy
    policy = resource(template, "WebBucketPolicy")["Properties"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}

    # When its statements are read
    read = statements["ReadByThisDistributionOnly"]
    tls = statements["DenyInsecureTransport"]

    # Then CloudFront may get objects, for this distribution only, and plain HTTP is refused
    assert policy["Bucket"] == {"Ref": "WebBucket"}
    assert read["Effect"] == "Allow"
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"] == {"Fn::Sub": "${WebBucket.Arn}/*"}
    source = read["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source.endswith(":distribution/${WebDistribution}")
    assert len(statements) == 2
    assert tls["Effect"] == "Deny"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_distribution_serves_the_bucket_over_https_with_the_headers(
    template: dict[str, Any],
) -> None:
    # Given the distribution
    config = resource(template, "WebDistribution")["Properties"]["DistributionConfig"]

    # When its origin and default behaviour are read
    (origin,) = config["Origins"]
    behaviour = config["DefaultCacheBehavior"]

    # Then it reads the bucket through origin access control (no identity, no public website),
    # sends HTTP to HTTPS, serves GET and HEAD only, with the response-headers policy
    assert origin["DomainName"] == {"Fn::GetAtt": ["WebBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["WebOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert behaviour["TargetOriginId"] == origin["Id"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "WebHeadersPolicy"}
    assert config["DefaultRootObject"] == "index.html"
    control = resource(template, "WebOriginAccessControl")["Properties"]
    assert control["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert control["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"


def test_the_headers_are_the_local_servers(template: dict[str, Any]) -> None:
    # Given CloudFront's response-headers policy and what the local server sends
    headers = resource(template, "WebHeadersPolicy")["Properties"]["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    text, values = security["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]

    # When the policy's directives are read
    policy = parse_policy(text)

    # Then they are the local server's, but connect-src names the API and the hosted UI
    assert {k: v for k, v in policy.items() if k != "connect-src"} == {
        k: v for k, v in CSP_DIRECTIVES.items() if k != "connect-src"
    }
    assert policy["connect-src"] == (
        "'self' https://*.execute-api.${AWS::Region}.${AWS::URLSuffix}${SignIn}"
    )
    sign_in = values["SignIn"]["Fn::If"]
    assert sign_in[0] == "UsesCognito"
    assert sign_in[1] == {
        "Fn::Sub": " https://${WebSignInDomain}.auth.${AWS::Region}.amazoncognito.com"
    }
    assert "unsafe" not in text
    # And every other header is the same, always overriding what the origin says
    hsts = security["StrictTransportSecurity"]
    assert f"max-age={hsts['AccessControlMaxAgeSec']}; includeSubDomains" == HSTS
    assert hsts["IncludeSubdomains"] is True
    assert security["ContentTypeOptions"] == {"Override": True}
    assert SECURITY_HEADERS["x-content-type-options"] == "nosniff"
    assert security["FrameOptions"]["FrameOption"] == SECURITY_HEADERS["x-frame-options"]
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == SECURITY_HEADERS["referrer-policy"]
    assert all(header["Override"] is True for header in security.values())


def test_the_app_client_signs_in_with_the_code_flow_back_to_the_page(
    template: dict[str, Any],
) -> None:
    # Given the user pool's app client and its hosted UI domain
    client = resource(template, "UserPoolClient")["Properties"]
    domain = resource(template, "WebSignInDomain")

    # When its OAuth settings are read
    flows = client["AllowedOAuthFlows"]

    # Then only the authorization code flow, by a public client (the page adds PKCE), comes
    # back to the page's callback, and signs out to the page
    assert flows == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["GenerateSecret"] is False
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email"}
    assert client["CallbackURLs"] == [{"Fn::Sub": f"{PAGE_ORIGIN}/callback.html"}]
    assert client["LogoutURLs"] == [{"Fn::Sub": f"{PAGE_ORIGIN}/"}]
    assert (REPO_ROOT / "web" / "callback.html").is_file()
    assert domain["Condition"] == "UsesCognito"
    assert domain["Properties"]["UserPoolId"] == {"Ref": "UserPool"}


def test_the_api_lets_the_page_call_it_and_read_its_headers(template: dict[str, Any]) -> None:
    # Given the HTTP API's CORS settings
    cors = resource(template, "ChatApi")["Properties"]["CorsConfiguration"]

    # When the origins are read, with and without more of them configured
    _, more, page_only = cors["AllowOrigins"]["Fn::If"]

    # Then the page's distribution is allowed either way, and the page can read a 429's
    # Retry-After and the request id
    assert page_only == [{"Fn::Sub": PAGE_ORIGIN}]
    assert {"Fn::Sub": PAGE_ORIGIN} in more["Fn::Split"][1]["Fn::Join"][1]
    assert set(cors["ExposeHeaders"]) == {"retry-after", "x-request-id"}
    assert set(cors["AllowHeaders"]) == {"content-type", "authorization"}


def test_the_outputs_tell_the_deploy_where_the_page_goes(template: dict[str, Any]) -> None:
    # Given the stack's outputs
    outputs = template["Outputs"]

    # When those of the page are read
    # Then they name the page, its bucket, its distribution and the hosted UI
    assert outputs["WebUrl"]["Value"] == {"Fn::Sub": f"{PAGE_ORIGIN}/"}
    assert outputs["WebBucketName"]["Value"] == {"Ref": "WebBucket"}
    assert outputs["WebDistributionId"]["Value"] == {"Ref": "WebDistribution"}
    assert outputs["SignInUrl"]["Condition"] == "UsesCognito"
    assert outputs["SignInUrl"]["Value"] == {
        "Fn::Sub": "https://${WebSignInDomain}.auth.${AWS::Region}.amazoncognito.com"
    }
