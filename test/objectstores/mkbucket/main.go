// Command mkbucket creates the test bucket on each local object-store server that
// test/objectstores/objectstores.sh starts: an S3 bucket, a GCS bucket and an Azure
// container, all of one name. A bucket that exists already is fine.
//
// Credentials come from the environment the drivers read too: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY for S3, AZURE_STORAGE_CONNECTION_STRING for Azure; the GCS
// emulator needs none.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func main() {
	s3Endpoint := flag.String("s3-endpoint", "", "S3 endpoint URL (empty: skip S3)")
	gcsEndpoint := flag.String("gcs-endpoint", "", "GCS emulator URL (empty: skip GCS)")
	azure := flag.Bool("azure", true, "create the Azure container (AZURE_STORAGE_CONNECTION_STRING)")
	bucket := flag.String("bucket", "stash-test", "bucket and container name")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if *s3Endpoint != "" {
		errs = append(errs, s3Bucket(ctx, *s3Endpoint, *bucket))
	}
	if *gcsEndpoint != "" {
		errs = append(errs, gcsBucket(ctx, *gcsEndpoint, *bucket))
	}
	if *azure {
		errs = append(errs, azureContainer(ctx, *bucket))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "mkbucket:", err)
		os.Exit(1)
	}
}

func s3Bucket(ctx context.Context, endpoint, name string) error {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return errors.New("s3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
	}
	c := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, ""),
	})
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	var owned *types.BucketAlreadyOwnedByYou
	var exists *types.BucketAlreadyExists
	if err != nil && !errors.As(err, &owned) && !errors.As(err, &exists) {
		return fmt.Errorf("s3: create bucket %s at %s: %w", name, endpoint, err)
	}
	return nil
}

// gcsBucket uses the JSON API's buckets.insert; the emulator needs no project.
func gcsBucket(ctx context.Context, endpoint, name string) error {
	body, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/storage/v1/b", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("gcs: create bucket %s: %w", name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
		return fmt.Errorf("gcs: create bucket %s: %s: %s", name, resp.Status, msg)
	}
	return nil
}

func azureContainer(ctx context.Context, name string) error {
	cs := os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
	if cs == "" {
		return errors.New("azure: AZURE_STORAGE_CONNECTION_STRING must be set")
	}
	c, err := service.NewClientFromConnectionString(cs, nil)
	if err != nil {
		return fmt.Errorf("azure: %w", err)
	}
	if _, err := c.CreateContainer(ctx, name, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("azure: create container %s: %w", name, err)
	}
	return nil
}
